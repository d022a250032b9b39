"""LUPerson data and bad images (the views and copy-paste: test_views.py)."""
import os
import os.path as osp

import numpy as np
import pytest
from mmdpal_testing import write_person_images

import mmdpal  # noqa: F401
from mmdpal.datasets import LUPersonDataset


def identity_pipeline():
    return [dict(type='LoadPersonImage')]


def test_folder_and_list_file(tmp_path):
    write_person_images(str(tmp_path / 'images' / 'a'), 3)
    write_person_images(str(tmp_path / 'images' / 'b'), 2, seed=3)
    ds = LUPersonDataset(
        data_root=str(tmp_path),
        data_prefix=dict(img_path='images'),
        pipeline=identity_pipeline())
    assert len(ds) == 5
    assert ds[0]['img'].shape == (96, 48, 3)
    (tmp_path / 'list.txt').write_text('a/0001.jpg\nb/0000.jpg\n')
    ds = LUPersonDataset(
        data_root=str(tmp_path),
        ann_file='list.txt',
        data_prefix=dict(img_path='images'),
        pipeline=identity_pipeline())
    assert [
        osp.relpath(ds.get_data_info(i)['img_path'], str(tmp_path / 'images'))
        for i in range(len(ds))
    ] == ['a/0001.jpg', 'b/0000.jpg']


def test_missing_and_empty_folders_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='no_such_dir'):
        LUPersonDataset(
            data_root=str(tmp_path), data_prefix=dict(img_path='no_such_dir'))
    os.makedirs(tmp_path / 'empty')
    with pytest.raises(ValueError, match='no images'):
        LUPersonDataset(
            data_root=str(tmp_path), data_prefix=dict(img_path='empty'))
    with pytest.raises(FileNotFoundError, match='lup1m.txt'):
        LUPersonDataset(data_root=str(tmp_path), ann_file='lup1m.txt')


def test_undecodable_images_are_skipped_counted_and_bounded(tmp_path):
    folder = tmp_path / 'images'
    write_person_images(str(folder), 8)
    (folder / '0003.jpg').write_bytes(b'not a jpeg at all')
    (folder / '0005.jpg').write_bytes(b'')
    ds = LUPersonDataset(
        data_root=str(tmp_path),
        data_prefix=dict(img_path='images'),
        max_bad_fraction=0.3,
        pipeline=identity_pipeline())
    np.random.seed(0)
    for i in range(len(ds)):
        assert ds[i]['img'].shape == (96, 48, 3)  # a good image every time
    assert ds.num_bad_images == 2
    strict = LUPersonDataset(
        data_root=str(tmp_path),
        data_prefix=dict(img_path='images'),
        max_bad_fraction=0.15,
        pipeline=identity_pipeline())
    assert strict.prepare_data(3) is None  # 1 of 8 is within 15%: skipped
    assert strict.num_bad_images == 1
    with pytest.raises(RuntimeError, match='2 of 8 images could not be'):
        strict.prepare_data(5)  # 2 of 8 is not


def test_make_lup_subset_is_seeded_and_readable(tmp_path):
    from mmdpal_testing import run_tool
    write_person_images(str(tmp_path / 'images' / 'x'), 10)
    outs = []
    for seed, name in ((0, 'a.txt'), (0, 'b.txt'), (1, 'c.txt')):
        result = run_tool([
            'tools/dataset_converters/make_lup_subset.py',
            str(tmp_path / 'images'),
            str(tmp_path / name), '--num', '4', '--seed',
            str(seed)
        ])
        assert result.returncode == 0, result.stderr
        outs.append((tmp_path / name).read_text().split())
    assert len(outs[0]) == 4 and len(set(outs[0])) == 4
    assert outs[0] == outs[1]  # same seed, same subset
    assert outs[0] != outs[2]
    ds = LUPersonDataset(
        data_root=str(tmp_path),
        ann_file='a.txt',
        data_prefix=dict(img_path='images'),
        pipeline=identity_pipeline())
    assert len(ds) == 4 and ds[0]['img'].shape == (96, 48, 3)
    too_many = run_tool([
        'tools/dataset_converters/make_lup_subset.py',
        str(tmp_path / 'images'),
        str(tmp_path / 'd.txt'), '--num', '11'
    ])
    assert too_many.returncode != 0
    assert 'larger than the 10 images' in too_many.stderr
