"""DPAL's views: the fused ViewAugment (its draws over many samples and its
pixel ops against the mmcv/PIL ops of the mmpretrain chain), the copy-paste
multi-person image and the Table 6 pipeline."""
import math
import os.path as osp
from collections import Counter

import mmcv
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdpal_testing import REPO, write_backgrounds, write_person_images
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.datasets.transforms import RandomResizedCrop

import mmdpal  # noqa: F401
from mmdpal.datasets import CopyPasteMultiPerson, ViewAugment
from mmdpal.registry import DATASETS, TRANSFORMS

BASE_DATA = osp.join(REPO, 'configs/_base_/datasets/lup1m_dpal.py')
NUM_DRAWS = 4000


def within_binomial(rate, p, n=NUM_DRAWS):
    """``rate`` of n draws agrees with probability p (4.5 sigma)."""
    return abs(rate - p) <= 4.5 * math.sqrt(p * (1 - p) / n) + 1e-12


def config_views():
    cfg = Config.fromfile(BASE_DATA)
    return dict(
        global_view=(cfg.global_view[0], (256, 128)),
        local_view=(cfg.local_view[0], (256, 128)),
        background_view=(cfg.background_view[0], (360, 480)))


@pytest.mark.parametrize('name',
                         ['global_view', 'local_view', 'background_view'])
def test_view_draws_match_the_configured_distribution(name):
    """The Table 6 views' random parameters over many samples: crop areas
    and aspect ratios as mmpretrain's RandomResizedCrop draws them (same
    values from the same seed), jitter factors, and the rates of flip,
    jitter, grayscale, blur and solarisation."""
    cfg, (h, w) = config_views()[name]
    view = TRANSFORMS.build(cfg)
    assert isinstance(view, ViewAugment)
    reference = RandomResizedCrop(
        scale=cfg['size'],
        crop_ratio_range=cfg['crop_scale'],
        aspect_ratio_range=cfg['crop_ratio'])
    np.random.seed(0)
    draws = [view.rand_params(h, w) for _ in range(NUM_DRAWS)]
    # the crop: the same draws as mmpretrain's RandomResizedCrop
    img = np.zeros((h, w, 3), np.uint8)
    for seed in range(200):
        np.random.seed(seed)
        ours = view.rand_crop(h, w)
        np.random.seed(seed)
        assert ours == reference.rand_crop_params(img)
    crops = np.array([d['crop'] for d in draws], np.float64)
    area = crops[:, 2] * crops[:, 3] / (h * w)
    ratio = crops[:, 3] / crops[:, 2]
    lo, hi = cfg['crop_scale']
    # exact up to rounding the crop's sides to pixels
    assert area.min() >= lo * 0.95 and area.max() <= min(hi * 1.01, 1.)
    r_lo, r_hi = cfg['crop_ratio']
    assert ratio.min() >= r_lo * 0.93 and ratio.max() <= r_hi * 1.07
    assert (crops[:, :2] >= 0).all()
    assert (crops[:, 0] + crops[:, 2] <= h).all()
    assert (crops[:, 1] + crops[:, 3] <= w).all()
    assert area.max() - area.min() > 0.5 * (hi - lo)  # the range is used

    def rate(key):
        return np.mean([bool(d[key]) for d in draws])

    assert within_binomial(rate('flip'), cfg['flip_prob'])
    assert within_binomial(rate('jitter'), cfg['jitter_prob'])
    assert within_binomial(rate('gray'), cfg['gray_prob'])
    blurred = [d['blur_sigma'] for d in draws if d['blur_sigma'] is not None]
    assert within_binomial(len(blurred) / NUM_DRAWS, cfg['blur_prob'])
    assert min(blurred) >= 0.1 and max(blurred) <= 2.0
    assert np.mean(blurred) == pytest.approx(1.05, abs=0.05)
    assert within_binomial(rate('solarize'), cfg.get('solarize_prob', 0.))

    jitter = cfg['color_jitter']
    factors = {k: [] for k in jitter}
    orders = Counter()
    for d in draws:
        if d['jitter']:
            orders[tuple(name for name, _ in d['jitter'])] += 1
            for key, factor in d['jitter']:
                factors[key].append(factor)
    assert len(orders) == 24  # every order of the four, as torchvision
    for key, x in jitter.items():
        centre = 0. if key == 'hue' else 1.
        values = np.array(factors[key])
        assert values.min() >= centre - x and values.max() <= centre + x
        assert values.min() < centre - 0.9 * x < centre + 0.9 * x < \
            values.max()
        assert values.mean() == pytest.approx(centre, abs=0.03 * x + 1e-3)
        assert values.std() == pytest.approx(x / math.sqrt(3), rel=0.05)


@pytest.fixture(scope='module')
def photo():
    """A smooth colourful 96x64 image with some detail."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (12, 8, 3)).astype(np.uint8)
    img = mmcv.imresize(small, (64, 96), interpolation='bicubic')
    img[40:56, 20:44] = (30, 200, 90)
    return img


def one_op(**params):
    base = dict(
        crop=(0, 0, 96, 64),
        flip=False,
        jitter=None,
        gray=False,
        blur_sigma=None,
        solarize=False)
    base.update(params)
    return base


def test_view_ops_match_the_mmcv_pillow_ops(photo):
    """Each op of ViewAugment against what the mmpretrain chain runs
    (mmcv's pillow backend, PIL): the same image to rounding."""
    from PIL import Image, ImageFilter
    view = ViewAugment(size=(96, 64))
    identity = view.apply(photo, one_op())
    assert (identity == photo).all()  # same-size crop, nothing else
    flipped = view.apply(photo, one_op(flip=True))
    assert (flipped == photo[:, ::-1]).all()

    def close(ours, theirs, max_diff, mean_diff=0.6):
        diff = np.abs(ours.astype(int) - theirs.astype(int))
        assert diff.max() <= max_diff and diff.mean() <= mean_diff, \
            (diff.max(), diff.mean())

    for f in (0.6, 1.4):
        close(
            view.apply(photo, one_op(jitter=[('brightness', f)])),
            mmcv.adjust_brightness(photo, f, backend='pillow'), 1)
        close(
            view.apply(photo, one_op(jitter=[('contrast', f)])),
            mmcv.adjust_contrast(photo, f, backend='pillow'), 1)
    for f in (0.8, 1.2):
        close(
            view.apply(photo, one_op(jitter=[('saturation', f)])),
            mmcv.adjust_color(photo, f, backend='pillow'), 2)
    for f in (-0.1, 0.07):  # PIL's HSV rounds saturated pixels otherwise
        ours = view.apply(photo, one_op(jitter=[('hue', f)]))
        close(ours, mmcv.adjust_hue(photo, f, backend='pillow'), 20, 1.5)
        close(ours, mmcv.adjust_hue(photo, f, backend='cv2'), 0)
    gray = view.apply(photo, one_op(gray=True))
    assert (gray[..., 0] == gray[..., 1]).all()
    close(gray[..., 0], mmcv.bgr2gray(photo), 1)
    for sigma in (0.5, 2.0):
        pil = np.array(
            Image.fromarray(photo).filter(
                ImageFilter.GaussianBlur(radius=sigma)))
        close(view.apply(photo, one_op(blur_sigma=sigma)), pil, 12, 1.0)
    solarized = view.apply(photo, one_op(solarize=True))
    assert (solarized == mmcv.solarize(photo, 128)).all()
    # crop + bicubic resize against mmpretrain's RandomResizedCrop (pillow)
    crop = ViewAugment(size=(128, 96), crop_scale=(0.3, 0.6))
    reference = RandomResizedCrop(
        scale=(128, 96),
        crop_ratio_range=(0.3, 0.6),
        aspect_ratio_range=(3 / 4, 4 / 3),
        interpolation='bicubic',
        backend='pillow')
    for seed in range(3):
        np.random.seed(seed)
        params = one_op(crop=crop.rand_crop(96, 64))
        np.random.seed(seed)
        theirs = reference.transform(dict(img=photo))['img']
        close(crop.apply(photo, params), theirs, 40, 2.0)


def test_view_transform_gives_the_view_size(photo):
    cfg, _ = config_views()['local_view']
    view = TRANSFORMS.build(cfg)
    np.random.seed(0)
    for _ in range(20):
        out = view(dict(img=photo))
        assert out['img'].shape == (128, 96, 3)
        assert out['img'].dtype == np.uint8
        assert out['img_shape'] == (128, 96)


@pytest.mark.parametrize('kwargs, match', [
    (dict(crop_scale=(0.5, 0.2)), 'crop_scale'),
    (dict(flip_prob=1.5), 'flip_prob'),
    (dict(interpolation='lanczos'), 'interpolation'),
    (dict(color_jitter=dict(brightnes=0.4)), 'color_jitter'),
    (dict(color_jitter=dict(hue=0.7)), 'color_jitter.hue'),
    (dict(size=(0, 5)), 'size'),
])
def test_view_bad_options_name_the_key(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ViewAugment(**{'size': (8, 8), **kwargs})


def test_copy_paste_positions_blend_and_nearest_resize(tmp_path):
    bg_dir = write_backgrounds(str(tmp_path / 'bg'), num=1, size=(64, 64))
    whole = [
        dict(
            type='ViewAugment',
            size=(64, 64),
            crop_scale=(1.0, 1.0),
            crop_ratio=(1.0, 1.0),
            flip_prob=0.)
    ]
    cp = CopyPasteMultiPerson(
        bg_dir,
        size=(64, 64),
        person_size=(32, 24),
        background_pipeline=whole,
        alpha=0.7)
    # a global view with detail at every pixel: the resize mode shows
    g = np.random.default_rng(0).integers(0, 255, (64, 32, 3), np.uint8)
    local = np.full((32, 24, 3), 10, np.uint8)
    np.random.seed(0)
    out = cp.transform({'img': [g, local, local]})
    assert len(out['img']) == 4 and 'person_boxes' not in out
    multi = out['img'][-1].astype(np.float32)
    np.random.seed(0)
    background = cp.background().astype(np.float32)  # the same draws
    # where the local view (10 everywhere) was pasted: the left half
    local_blend = 0.7 * 10 + 0.3 * background
    is_local = np.abs(multi - local_blend).max(-1) <= 1.0
    ys, xs = np.nonzero(is_local)
    y1, x1 = ys.min(), xs.min()
    assert is_local[y1:y1 + 32, x1:x1 + 24].all()
    assert x1 + 24 <= 32  # left half
    # the global view, resized nearest as torch's default interpolate
    nearest = F.interpolate(
        torch.from_numpy(g).permute(2, 0, 1)[None].float(),
        size=(32, 24)).round()[0].permute(1, 2, 0).numpy()
    found = 0
    for y in range(0, 64 - 32 + 1):
        for x in range(32, 64 - 24 + 1):
            expected = 0.7 * nearest + 0.3 * background[y:y + 32, x:x + 24]
            if np.abs(multi[y:y + 32, x:x + 24] - expected).max() <= 1.0:
                found += 1
    assert found == 1
    outside = np.ones((64, 64), bool)
    outside[y1:y1 + 32, x1:x1 + 24] = False
    outside[:, 32:] = False  # the right person is somewhere there
    assert np.abs(multi[outside] - background[outside]).max() <= 1.0
    # bicubic on request: a different (smoother) right person
    cp_bicubic = CopyPasteMultiPerson(
        bg_dir,
        size=(64, 64),
        person_size=(32, 24),
        background_pipeline=whole,
        person_interpolation='bicubic')
    np.random.seed(0)
    other = cp_bicubic.transform({'img': [g, local, local]})['img'][-1]
    assert (other[:, :32] == out['img'][-1][:, :32]).all()
    assert (other[:, 32:] != out['img'][-1][:, 32:]).any()


def test_copy_paste_bad_options(tmp_path):
    with pytest.raises(FileNotFoundError, match='nobg'):
        CopyPasteMultiPerson(str(tmp_path / 'nobg'))
    bg_dir = write_backgrounds(str(tmp_path / 'bg'), num=1)
    with pytest.raises(ValueError, match='person_interpolation'):
        CopyPasteMultiPerson(bg_dir, person_interpolation='area')
    cp = CopyPasteMultiPerson(
        bg_dir,
        size=(64, 64),
        person_size=(32, 24),
        background_pipeline=[dict(type='ViewAugment', size=(48, 64))])
    with pytest.raises(ValueError, match='background_pipeline gives'):
        cp.transform({'img': [np.zeros((64, 32, 3), np.uint8)] * 3})


def test_table6_pipeline_gives_the_four_views(tmp_path):
    """The real config's pipeline on generated LUPerson-format crops: four
    uint8 views, and nothing else packed for the model."""
    write_person_images(str(tmp_path / 'images'), 4, size=(160, 64))
    write_backgrounds(str(tmp_path / 'bg'), size=(300, 400))
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/dpal/vit-ti_path-b_lup1m.py'))
    init_default_scope('mmdpal')
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.update(data_root=str(tmp_path), ann_file='')
    ds_cfg.pipeline[2].background_dir = str(tmp_path / 'bg')
    ds = DATASETS.build(ds_cfg)
    np.random.seed(0)
    for i in range(len(ds)):
        sample = ds[i]
        shapes = [tuple(v.shape) for v in sample['inputs']]
        assert shapes == [(3, 256, 128), (3, 128, 96), (3, 128, 96),
                          (3, 256, 256)]
        assert all(v.dtype == torch.uint8 for v in sample['inputs'])
        assert 'person_boxes' not in sample['data_samples']
