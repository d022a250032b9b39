"""SAIP's views from the real config's pipeline (DPAL's transforms with
options): 2 global 256x128 views, 7 local 128x64 crops, a 224x224
multi-person image and the boxes of its two pasted persons; then one
``train_step`` of the tiny model on such a batch."""
import os.path as osp

import numpy as np
import torch
from mmdpal_testing import REPO, write_backgrounds, write_person_images
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

import mmdpal  # noqa: F401
from mmdpal.datasets import CopyPasteMultiPerson
from mmdpal.registry import DATASETS, FUNCTIONS, MODELS

CONFIG = osp.join(REPO, 'configs/saip/saip_vit-ti_lup1m.py')


def build_dataset(tmp_path, cfg):
    write_person_images(str(tmp_path / 'images'), 2, size=(160, 64))
    write_backgrounds(str(tmp_path / 'bg'), size=(300, 400))
    init_default_scope('mmdpal')
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.update(data_root=str(tmp_path), ann_file='')
    ds_cfg.pipeline[2].background_dir = str(tmp_path / 'bg')
    return DATASETS.build(ds_cfg)


def test_saip_pipeline_gives_its_views_and_box_masks(tmp_path):
    ds = build_dataset(tmp_path, Config.fromfile(CONFIG))
    np.random.seed(0)
    for i in range(len(ds)):
        sample = ds[i]
        shapes = [tuple(v.shape) for v in sample['inputs']]
        assert shapes == [(3, 256, 128)] * 2 + [(3, 128, 64)] * 7 + [
            (3, 224, 224)
        ]
        assert all(v.dtype == torch.uint8 for v in sample['inputs'])
        masks = np.asarray(sample['data_samples'].paste_masks)
        assert masks.shape == (2, 224, 224) and masks.dtype == np.uint8
        assert set(np.unique(masks)) == {0, 1}
        # one 128x64 box each, left half / right half, no overlap
        for m, (lo, hi) in zip(masks, ((0, 112), (112, 224))):
            ys, xs = np.nonzero(m)
            assert m.sum() == 128 * 64
            assert ys.max() - ys.min() + 1 == 128
            assert xs.max() - xs.min() + 1 == 64
            assert lo <= xs.min() and xs.max() < hi
        # the right box holds the anchor shrunk to 128x64 (nearest),
        # blended 0.7 / 0.3 into the background
        multi = sample['inputs'][-1].numpy().astype(float)
        anchor = sample['inputs'][0].numpy().astype(float)
        ys, xs = np.nonzero(masks[1])
        box = multi[:, ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        shrunk = anchor[:, ::2, ::2]  # nearest 256x128 -> 128x64
        assert np.abs(box - 0.7 * shrunk).max() <= 0.3 * 255 + 1


def test_box_masks_are_off_by_default(tmp_path):
    write_backgrounds(str(tmp_path / 'bg'), size=(80, 80))
    cp = CopyPasteMultiPerson(
        str(tmp_path / 'bg'), size=(64, 64), person_size=(32, 16))
    views = [np.zeros((64, 32, 3), np.uint8), np.zeros((32, 16, 3), np.uint8)]
    out = cp.transform(dict(img=views))
    assert 'paste_masks' not in out and len(out['img']) == 3
    cp = CopyPasteMultiPerson(
        str(tmp_path / 'bg'),
        size=(64, 64),
        person_size=(32, 16),
        box_masks=True)
    assert cp.transform(dict(img=views))['paste_masks'].sum() == 2 * 32 * 16


def test_one_train_step_on_the_pipeline(tmp_path):
    """Pipeline -> collate -> data preprocessor -> SAIP.loss -> update, the
    tiny model on views shrunk by 4 (the config's transforms)."""
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(
        Config.fromfile(osp.join(REPO, 'tests/data/tiny_saip.py')).to_dict())
    pipe = cfg.train_dataloader.dataset.pipeline
    multi_view = pipe[1]
    for views, size in zip(multi_view.transforms,
                           ((64, 32), (64, 32), (32, 16))):
        views[0].size = size
    pipe[2].update(size=(56, 56), person_size=(32, 16))
    pipe[2].background_pipeline[0].size = (56, 56)
    multi_view.num_views = [1, 1, 3]
    ds = build_dataset(tmp_path, cfg)
    collate = FUNCTIONS.get(cfg.train_dataloader.collate_fn.type)
    data = collate([ds[0], ds[1]])
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    before = model.backbone.cls_token.detach().clone()
    log = model.train_step(data, optim)
    assert set(log) == {
        'loss', 'loss_csm', 'loss_csr', 'loss_css_anchor', 'loss_css_local'
    }
    assert torch.isfinite(log['loss'])
    assert not torch.equal(before, model.backbone.cls_token)
