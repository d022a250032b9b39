import math
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.datasets.transforms import RandomResizedCrop

from mmdpal.registry import TRANSFORMS
from mmdpal.utils.options import check_choice

_INTERPOLATION = {
    'bicubic': cv2.INTER_CUBIC,
    'bilinear': cv2.INTER_LINEAR,
    'nearest': cv2.INTER_NEAREST,
}
_JITTER_KEYS = ('brightness', 'contrast', 'saturation', 'hue')
# pixels >= 128 inverted (PIL's ImageOps.solarize, mmcv.solarize)
_SOLARIZE_LUT = np.where(
    np.arange(256) < 128, np.arange(256),
    255 - np.arange(256)).astype(np.uint8)


def _check_range(name: str, value, low: float = 0., high: float = math.inf):
    value = tuple(float(v) for v in value)
    if len(value) != 2 or not low <= value[0] <= value[1] <= high:
        raise ValueError(f'ViewAugment.{name} must be (min, max) with '
                         f'{low} <= min <= max <= {high}, got {value}')
    return value


def _check_prob(name: str, value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError(
            f'ViewAugment.{name} must be a probability in [0, 1], got {value}')
    return float(value)


@TRANSFORMS.register_module()
class ViewAugment(BaseTransform):
    """One augmented view in one transform, with OpenCV ops on uint8 BGR.

    The same augmentation as the chain of mmpretrain transforms
    ``RandomResizedCrop`` -> ``RandomFlip`` -> ``RandomApply(ColorJitter)`` ->
    ``RandomGrayscale`` -> ``GaussianBlur`` -> ``Solarize`` (the authors'
    torchvision pipeline, DINO-style), with the same parameter ranges and
    probabilities, but without a PIL round trip per op and without copying
    the results dict per op (3-4x faster per view, see docs/benchmark.md).
    In order:

    - crop: area ``crop_scale`` x the image's, aspect ratio (w / h)
      log-uniform in ``crop_ratio``, 10 attempts then a central crop (the
      draws of mmpretrain's/torchvision's ``RandomResizedCrop``), resized to
      ``size`` with ``interpolation``; when the crop shrinks 2x or more in
      both directions, OpenCV's area averaging is used instead (an
      anti-aliased reduction, as PIL's resize is);
    - horizontal flip with ``flip_prob``;
    - colour jitter with ``jitter_prob``: brightness, contrast, saturation
      factors uniform in ``1 -+ x`` and a hue shift uniform in ``-+ hue``
      (of the full circle), applied in a random order, each step rounded and
      clipped to uint8 as torchvision's PIL ops do;
    - grayscale (ITU-R 601 luma, 3 channels kept) with ``gray_prob``;
    - Gaussian blur with ``blur_prob``, sigma uniform in ``blur_sigma``
      (PIL's ``GaussianBlur(radius=sigma)``, edge pixels repeated);
    - solarisation (pixels >= 128 inverted) with ``solarize_prob``.

    Randomness comes from ``np.random`` only (seeded per worker by mmengine).

    Required keys: img. Modified keys: img, img_shape.

    Args:
        size (tuple): (h, w) of the view.
        crop_scale (tuple): Range of the crop's area, as a fraction of the
            image's. Defaults to (0.08, 1.0).
        crop_ratio (tuple): Range of the crop's aspect ratio w / h. Defaults
            to (3 / 4, 4 / 3).
        interpolation (str): 'bicubic', 'bilinear' or 'nearest'. Defaults to
            'bicubic'.
        flip_prob (float): Horizontal flip probability. Defaults to 0.5.
        color_jitter (dict, optional): Maximum ``brightness``, ``contrast``,
            ``saturation`` (factor 1 -+ x) and ``hue`` (shift -+ x, at most
            0.5) changes; None for no jitter. Defaults to None.
        jitter_prob (float): Probability to apply the colour jitter.
            Defaults to 0.8.
        gray_prob (float): Grayscale probability. Defaults to 0.
        blur_prob (float): Gaussian blur probability. Defaults to 0.
        blur_sigma (tuple): Range of the blur's sigma. Defaults to
            (0.1, 2.0).
        solarize_prob (float): Solarisation probability. Defaults to 0.
    """

    def __init__(self,
                 size: Sequence[int],
                 crop_scale: Tuple[float, float] = (0.08, 1.0),
                 crop_ratio: Tuple[float, float] = (3 / 4, 4 / 3),
                 interpolation: str = 'bicubic',
                 flip_prob: float = 0.5,
                 color_jitter: Optional[dict] = None,
                 jitter_prob: float = 0.8,
                 gray_prob: float = 0.,
                 blur_prob: float = 0.,
                 blur_sigma: Tuple[float, float] = (0.1, 2.0),
                 solarize_prob: float = 0.):
        if len(size) != 2 or min(size) < 1:
            raise ValueError(
                f'ViewAugment.size must be (h, w) > 0, got {size}')
        self.size = tuple(int(s) for s in size)
        self.crop_scale = _check_range('crop_scale', crop_scale, 0., 1.)
        if self.crop_scale[1] == 0:
            raise ValueError('ViewAugment.crop_scale must allow an area > 0')
        self.crop_ratio = _check_range('crop_ratio', crop_ratio, 1e-6)
        # only its parameter draws are used (the crop itself is done here)
        self._crop = RandomResizedCrop(
            scale=self.size,
            crop_ratio_range=self.crop_scale,
            aspect_ratio_range=self.crop_ratio)
        check_choice('ViewAugment.interpolation', interpolation,
                     sorted(_INTERPOLATION))
        self.interpolation = interpolation
        self.flip_prob = _check_prob('flip_prob', flip_prob)
        self.color_jitter = None
        if color_jitter is not None:
            unknown = set(color_jitter) - set(_JITTER_KEYS)
            if unknown:
                raise ValueError(
                    f'ViewAugment.color_jitter keys must be among '
                    f'{_JITTER_KEYS}, got {sorted(unknown)}')
            jitter = {k: float(color_jitter.get(k, 0.)) for k in _JITTER_KEYS}
            for k in _JITTER_KEYS:
                limit = 0.5 if k == 'hue' else 1.
                if not 0 <= jitter[k] <= limit:
                    raise ValueError(
                        f'ViewAugment.color_jitter.{k} must be in [0, '
                        f'{limit}], got {jitter[k]}')
            self.color_jitter = jitter
        self.jitter_prob = _check_prob('jitter_prob', jitter_prob)
        self.gray_prob = _check_prob('gray_prob', gray_prob)
        self.blur_prob = _check_prob('blur_prob', blur_prob)
        self.blur_sigma = _check_range('blur_sigma', blur_sigma, 1e-6)
        self.solarize_prob = _check_prob('solarize_prob', solarize_prob)

    def rand_crop(self, h: int, w: int) -> Tuple[int, int, int, int]:
        """(y, x, crop_h, crop_w) of a random-resized crop of an h x w
        image: mmpretrain's ``RandomResizedCrop`` draws them."""
        return self._crop.rand_crop_params(np.empty((h, w, 0), np.uint8))

    def rand_params(self, h: int, w: int) -> dict:
        """Every random choice for one view of an h x w image.

        Returns:
            dict: ``crop`` (y, x, h, w), ``flip`` (bool), ``jitter`` (None or
            a list of (name, factor) in the order applied), ``gray``
            (bool), ``blur_sigma`` (None or sigma), ``solarize`` (bool).
        """
        params = dict(crop=self.rand_crop(h, w))
        params['flip'] = bool(np.random.rand() < self.flip_prob)
        jitter = None
        if self.color_jitter is not None and \
                np.random.rand() < self.jitter_prob:
            jitter = []
            for i in np.random.permutation(4):
                name = _JITTER_KEYS[i]
                x = self.color_jitter[name]
                if x > 0:
                    centre = 0. if name == 'hue' else 1.
                    jitter.append(
                        (name, np.random.uniform(centre - x, centre + x)))
        params['jitter'] = jitter
        params['gray'] = bool(np.random.rand() < self.gray_prob)
        params['blur_sigma'] = np.random.uniform(*self.blur_sigma) \
            if np.random.rand() < self.blur_prob else None
        params['solarize'] = bool(np.random.rand() < self.solarize_prob)
        return params

    def apply(self, img: np.ndarray, params: dict) -> np.ndarray:
        """The view of ``img`` (HxWx3 uint8 BGR) for the given parameters."""
        y, x, ch, cw = params['crop']
        H, W = self.size
        interpolation = _INTERPOLATION[self.interpolation]
        if min(ch / H, cw / W) >= 2 and self.interpolation != 'nearest':
            interpolation = cv2.INTER_AREA  # anti-aliased, as PIL's resize
        img = cv2.resize(
            img[y:y + ch, x:x + cw], (W, H), interpolation=interpolation)
        if params['flip']:
            img = cv2.flip(img, 1)
        for name, factor in params['jitter'] or ():
            img = getattr(self, f'_{name}')(img, factor)
        if params['gray']:
            img = cv2.cvtColor(
                cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        if params['blur_sigma'] is not None:
            img = self._blur(img, params['blur_sigma'])
        if params['solarize']:
            img = cv2.LUT(img, _SOLARIZE_LUT)
        return img

    @staticmethod
    def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
        # cv2.GaussianBlur's kernel for uint8 (+-3 sigma), as a separable
        # float filter (2x faster than its fixed-point path for sigma 2)
        kernel = cv2.getGaussianKernel(int(round(sigma * 6 + 1)) | 1, sigma)
        return cv2.sepFilter2D(
            img, -1, kernel, kernel, borderType=cv2.BORDER_REPLICATE)

    @staticmethod
    def _brightness(img: np.ndarray, factor: float) -> np.ndarray:
        return cv2.convertScaleAbs(img, alpha=factor)

    @staticmethod
    def _contrast(img: np.ndarray, factor: float) -> np.ndarray:
        # blend with the mean grey level (rounded, as PIL's)
        mean = int(cv2.mean(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))[0] + 0.5)
        return cv2.addWeighted(img, factor, img, 0., (1 - factor) * mean)

    @staticmethod
    def _saturation(img: np.ndarray, factor: float) -> np.ndarray:
        gray = cv2.cvtColor(
            cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        return cv2.addWeighted(img, factor, gray, 1 - factor, 0.)

    @staticmethod
    def _hue(img: np.ndarray, shift: float) -> np.ndarray:
        # hue on 0..255 for the full circle, shifted with wrap-around (PIL,
        # mmcv.adjust_hue)
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV_FULL)
        hsv[..., 0] += np.uint8(int(shift * 255) % 256)
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR_FULL)

    def transform(self, results: dict) -> dict:
        img = results['img']
        img = self.apply(img, self.rand_params(*img.shape[:2]))
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, crop_scale='
                f'{self.crop_scale}, crop_ratio={self.crop_ratio}, '
                f'interpolation={self.interpolation}, flip_prob='
                f'{self.flip_prob}, color_jitter={self.color_jitter}, '
                f'jitter_prob={self.jitter_prob}, gray_prob={self.gray_prob}'
                f', blur_prob={self.blur_prob}, blur_sigma={self.blur_sigma}'
                f', solarize_prob={self.solarize_prob})')
