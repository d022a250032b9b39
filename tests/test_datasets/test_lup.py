"""LUPerson data, bad images, the four DPAL views and copy-paste."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmdpal_testing import REPO, write_backgrounds, write_person_images
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdpal  # noqa: F401
from mmdpal.datasets import CopyPasteMultiPerson, LUPersonDataset
from mmdpal.registry import DATASETS


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


def test_copy_paste_boxes_masks_and_blend(tmp_path):
    bg_dir = write_backgrounds(str(tmp_path / 'bg'), num=1, size=(64, 64))
    cp = CopyPasteMultiPerson(
        bg_dir,
        size=(64, 64),
        person_size=(32, 24),
        background_scale=(1.0, 1.0),
        alpha=0.7)
    g = np.full((64, 32, 3), 200, np.uint8)
    local = np.full((32, 24, 3), 10, np.uint8)
    np.random.seed(0)
    out = cp.transform({'img': [g, local, local]})
    assert len(out['img']) == 4
    multi = out['img'][-1].astype(np.float32)
    boxes, masks = out['person_boxes'], out['person_masks']
    assert boxes.shape == (2, 4) and masks.shape == (2, 64, 64)
    bg = cp._background  # the same background crop (scale 1, one image)
    np.random.seed(0)
    background = bg().astype(np.float32)
    for i, value in enumerate([10, 200]):  # last view left, global right
        x1, y1, x2, y2 = boxes[i].astype(int)
        assert (x2 - x1, y2 - y1) == (24, 32)
        assert masks[i].sum() == 24 * 32
        assert masks[i, y1:y2, x1:x2].all()
        expected = 0.7 * value + 0.3 * background[y1:y2, x1:x2]
        assert np.abs(multi[y1:y2, x1:x2] - expected).max() <= 1.0
    assert boxes[0, 2] <= 32 <= boxes[1, 0]  # side by side
    outside = masks.sum(0) == 0
    assert np.abs(multi[outside] - background[outside]).max() <= 1.0


def test_missing_background_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='nobg'):
        CopyPasteMultiPerson(str(tmp_path / 'nobg'))


def test_table6_pipeline_gives_the_four_views(tmp_path):
    """The real config's pipeline on generated LUPerson-format crops."""
    write_person_images(str(tmp_path / 'images'), 4, size=(160, 64))
    write_backgrounds(str(tmp_path / 'bg'), size=(300, 400))
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/dpal/vit-ti_path-b_lup1m.py'))
    init_default_scope('mmdpal')
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.update(data_root=str(tmp_path), ann_file='')
    ds_cfg.pipeline[2].background_dir = str(tmp_path / 'bg')
    ds = DATASETS.build(ds_cfg)
    sample = ds[0]
    shapes = [tuple(v.shape) for v in sample['inputs']]
    assert shapes == [(3, 256, 128), (3, 128, 96), (3, 128, 96), (3, 256, 256)]
    assert all(v.dtype == torch.uint8 for v in sample['inputs'])
    ds_sample = sample['data_samples']
    assert ds_sample.person_boxes.shape == (2, 4)
    assert ds_sample.person_masks.shape == (2, 256, 256)


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
