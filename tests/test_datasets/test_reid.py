"""Market-1501 and MSMT17 read from their released layouts (generated
here): identities and cameras from the file names / list files, junk and
distractors as the standard protocol has them, mmdet's P x K sampling, and
one-line errors for a bad folder."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmdpal_testing import write_market1501, write_msmt17

from mmdpal.datasets import MSMT17, Market1501


@pytest.fixture(scope='module')
def market(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('market'))
    return root, write_market1501(root)


def records(dataset):
    return [(osp.basename(d['img_path']), int(d['gt_label']), d['camera_id'],
             d['is_query']) for d in dataset]


def test_market_train_split_relabels_identities(market):
    root, written = market
    dataset = Market1501(data_root=root, split='train')
    assert len(dataset) == len(written['train']) == 16
    pids = sorted({pid for _, pid, _ in written['train']})
    expected = [(name, pids.index(pid), cam, False)
                for name, pid, cam in sorted(written['train'])]
    assert records(dataset) == expected
    assert {int(d['gt_label']) for d in dataset} == {0, 1, 2, 3}


def test_market_test_split_is_query_then_gallery(market):
    """Junk (-1) is left out, the distractor (0000) stays in the gallery,
    Thumbs.db is ignored, the identities are the file names' ones."""
    root, written = market
    dataset = Market1501(data_root=root, split='test')
    got = records(dataset)
    query = [(n, p, c, True) for n, p, c in sorted(written['query'])]
    gallery = [(n, p, c, False) for n, p, c in sorted(written['gallery'])]
    assert got == query + gallery
    assert not any(name.startswith('-1') for name, *_ in got)
    assert ('0000_c2s1_000008_00.jpg', 0, 2, False) in got
    assert len(Market1501(data_root=root, split='query')) == 3
    assert len(Market1501(data_root=root, split='gallery')) == 13


def test_market_parses_the_released_name(tmp_path):
    write_market1501(str(tmp_path))
    img = cv2.imread(
        str(next((tmp_path / 'query').iterdir())), cv2.IMREAD_COLOR)
    cv2.imwrite(str(tmp_path / 'query' / '0002_c4s1_000451_03.jpg'), img)
    info = Market1501(data_root=str(tmp_path), split='query')[0]
    assert (int(info['gt_label']), info['camera_id']) == (2, 4)


def test_market_pk_sampling(market):
    """P x K items as mmdet's ReIDDataset makes them: num_ids identities x
    ins_per_id images, the item's identity first, each key a list."""
    root, _ = market
    dataset = Market1501(
        data_root=root,
        split='train',
        triplet_sampler=dict(num_ids=3, ins_per_id=2))
    np.random.seed(0)
    group = dataset[5]
    labels = [int(v) for v in group['gt_label']]
    assert len(group['img_path']) == 6
    assert labels[:2] == [int(dataset.get_data_info(5)['gt_label'])] * 2
    assert len(set(labels)) == 3
    assert all(labels.count(v) == 2 for v in labels)


def one_line(excinfo):
    message = str(excinfo.value)
    assert '\n' not in message
    return message


def test_market_missing_query_folder(tmp_path):
    write_market1501(str(tmp_path))
    os.rename(tmp_path / 'query', tmp_path / 'queries')
    with pytest.raises(FileNotFoundError) as excinfo:
        Market1501(data_root=str(tmp_path), split='test')
    message = one_line(excinfo)
    assert osp.join(str(tmp_path), 'query') in message
    assert 'bounding_box_train/, query/ and bounding_box_test/' in message


def test_market_bad_file_name(tmp_path):
    write_market1501(str(tmp_path))
    bad = tmp_path / 'bounding_box_train' / 'person_12.jpg'
    bad.write_bytes(b'')
    with pytest.raises(ValueError) as excinfo:
        Market1501(data_root=str(tmp_path), split='train')
    message = one_line(excinfo)
    assert str(bad) in message and '0002_c1s1_000451_03.jpg' in message


def test_market_unknown_split_or_too_few_identities(market, tmp_path):
    with pytest.raises(ValueError, match="'val'"):
        Market1501(data_root=str(tmp_path), split='val')
    with pytest.raises(ValueError, match='wants 5 identities.* has 4'):
        Market1501(
            data_root=market[0], triplet_sampler=dict(num_ids=5, ins_per_id=2))


def test_msmt17_lists(tmp_path):
    lists = write_msmt17(str(tmp_path))
    train = MSMT17(data_root=str(tmp_path), split='train')
    # list_train.txt and list_val.txt together, identities 0..2 kept
    expected = sorted(lists['train'] + lists['val'])
    got = sorted((osp.relpath(d['img_path'], str(tmp_path / 'train')),
                  int(d['gt_label']), d['camera_id']) for d in train)
    assert got == expected
    test = MSMT17(data_root=str(tmp_path), split='test')
    assert [d['is_query'] for d in test
            ] == [True] * len(lists['query']) + [False] * len(lists['gallery'])
    assert [(osp.relpath(d['img_path'], str(tmp_path / 'test')),
             int(d['gt_label']), d['camera_id'])
            for d in test] == lists['query'] + lists['gallery']
    assert all(osp.isfile(d['img_path']) for d in test)


def test_msmt17_bad_line(tmp_path):
    write_msmt17(str(tmp_path))
    with open(tmp_path / 'list_query.txt', 'a') as f:
        f.write('0001/broken.jpg 1\n')
    with pytest.raises(ValueError) as excinfo:
        MSMT17(data_root=str(tmp_path), split='test')
    message = one_line(excinfo)
    assert str(tmp_path / 'list_query.txt') in message
    assert "'0001/broken.jpg 1'" in message and 'list_gallery.txt' in message
