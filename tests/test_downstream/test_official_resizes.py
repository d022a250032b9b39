"""The official ReID and attribute configs read and resize images as the
authors' torchvision pipelines: PIL decoding, PIL resizing (antialiased when
shrinking), bicubic for ReID training, bilinear otherwise."""
import os.path as osp

import numpy as np
import pytest
from mmdpal_testing import REPO
from mmengine.config import Config
from mmengine.registry import TRANSFORMS, init_default_scope
from PIL import Image
from torchvision import transforms as T

import mmdpal  # noqa: F401

BICUBIC, BILINEAR = T.InterpolationMode.BICUBIC, T.InterpolationMode.BILINEAR
REID = 'configs/downstream/reid/bnneck-reid_dpal-vit-ti_1xb64-120e_'
REID = (REID + 'market1501-256x128_official.py',
        REID + 'market1501-256x128.py')
PAR = 'configs/downstream/attribute/mlc_dpal-vit-ti_1xb64-'
PAR = (PAR + '30e_pa100k-256x128_official.py', PAR + '25e_pa100k-256x128.py')


def person_like_jpeg(path, height, width, orientation=1, seed=0):
    """A JPEG with smooth shading, hard edges and noise (what a pedestrian
    crop has), of the given size and EXIF orientation tag."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([
        120 + 80 * np.sin(x / 7.0 + c) * np.cos(y / 11.0 - c) for c in range(3)
    ], -1)
    for _ in range(12):
        y0, x0 = rng.integers(0, height - 4), rng.integers(0, width - 4)
        img[y0:y0 + rng.integers(3, height // 3),
            x0:x0 + rng.integers(3, width // 2)] = rng.integers(0, 256, 3)
    img = img + rng.normal(0, 12, img.shape)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
        path, quality=90, exif=exif)
    return path


def loaded_and_resized(config, pipeline_key, path):
    """``path`` through the config's loading and resizing steps, as RGB."""
    cfg = Config.fromfile(osp.join(REPO, config))
    init_default_scope(cfg.default_scope)
    pipeline = cfg[pipeline_key].dataset.pipeline
    if pipeline[0]['type'] == 'TransformBroadcaster':
        pipeline = pipeline[0]['transforms']
    load, resize = (TRANSFORMS.build(t) for t in pipeline[:2])
    assert type(resize).__name__ == 'Resize'
    img = resize(load(dict(img_path=path)))['img']
    return np.ascontiguousarray(img[..., ::-1])


def theirs(path, interpolation):
    """torchvision's T.Resize((256, 128)) on PIL's RGB image, as their
    datasets read it (``Image.open(path).convert('RGB')``)."""
    img = Image.open(path).convert('RGB')
    return np.asarray(T.Resize((256, 128), interpolation=interpolation)(img))


@pytest.mark.parametrize(
    'size', [(128, 64, 1), (400, 170, 1), (400, 170, 6)],
    ids=['enlarged', 'shrunk', 'exif-rotated'])
@pytest.mark.parametrize('configs, pipeline_key, interpolation', [
    (REID, 'train_dataloader', BICUBIC),
    (REID, 'test_dataloader', BILINEAR),
    (PAR, 'train_dataloader', BILINEAR),
    (PAR, 'test_dataloader', BILINEAR),
])
def test_official_resize_is_theirs(tmp_path, size, configs, pipeline_key,
                                   interpolation):
    official_config, default_config = configs
    path = person_like_jpeg(str(tmp_path / 'person.jpg'), *size)
    expected = theirs(path, interpolation)
    official = loaded_and_resized(official_config, pipeline_key, path)
    assert np.array_equal(official, expected)
    # the default config's mmcv (cv2, bilinear, no antialiasing) resize is
    # another image
    default = loaded_and_resized(default_config, pipeline_key, path)
    assert default.shape == expected.shape
    assert not np.array_equal(default, expected)
