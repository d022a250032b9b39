import math
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform

from mmdpal.registry import TRANSFORMS


def person_affine_matrix(center: Sequence[float], src_width: float,
                         rotation: float,
                         out_size: Sequence[int]) -> np.ndarray:
    """(2, 3) matrix mapping the image onto an ``out_size`` (h, w) crop as
    SCHP's ``get_affine_transform`` does (HumanParsing/utils/transforms.py):
    ``center`` to the crop centre ((w - 1) / 2, (h - 1) / 2), a source width
    of ``src_width`` pixels to ``w - 1`` crop pixels, rotated by
    ``rotation`` degrees (counter-clockwise in the crop).
    """
    out_h, out_w = out_size
    k = (out_w - 1) / src_width
    a = math.radians(rotation)
    linear = k * np.array([[math.cos(a), math.sin(a)],
                           [-math.sin(a), math.cos(a)]])
    dst_center = np.array([(out_w - 1) / 2, (out_h - 1) / 2])
    shift = dst_center - linear @ np.asarray(center, dtype=np.float64)
    return np.concatenate([linear, shift[:, None]], 1)


def fitted_box_width(img_shape: Sequence[int],
                     crop_size: Sequence[int]) -> float:
    """Width of the image's box ``(0, 0, w - 1, h - 1)`` widened or
    heightened to the crop's aspect ratio (SCHP's ``_xywh2cs``): the source
    width that :func:`person_affine_matrix` maps onto the crop's width."""
    h, w = img_shape[:2]
    out_h, out_w = crop_size
    box_w, box_h = w - 1, h - 1
    aspect = out_w / out_h
    if box_w < aspect * box_h:
        box_w = box_h * aspect
    return box_w


@TRANSFORMS.register_module()
class SCHPAffineCrop(BaseTransform):
    """The training crop of the authors' LIP trainer (HumanParsing/datasets/
    datasets.py ``LIPDataSet``, SCHP's): the whole image, its box widened
    or heightened to the crop's aspect ratio, is warped onto the
    ``crop_size`` crop, its scale multiplied by N(1, ``scale_factor``^2)
    clipped to 1 +- ``scale_factor``, rotated with probability
    ``rotation_prob`` by N(0, ``rotation_factor``^2) degrees clipped to
    +- 2 ``rotation_factor``. Bilinear for the image (border 0), nearest for
    the label maps (border ``ignore_index``). Their flip (with the left /
    right classes swapped) is mmseg's ``RandomFlip(swap_seg_labels=...)``
    after this crop: the box is centred, so flipping before or after the
    warp (with the rotation's sign, drawn symmetrically) is the same draw.

    Required keys: img, seg_fields. Modified keys: img, img_shape and the
    maps in seg_fields.

    Args:
        crop_size (tuple): (h, w) of the crop.
        scale_factor (float): Defaults to 0.25.
        rotation_factor (float): Degrees. Defaults to 30.
        rotation_prob (float): Defaults to 0.6.
        ignore_index (int): Label of the pixels warped in from outside the
            image. Defaults to 255.
    """

    def __init__(self,
                 crop_size: Sequence[int],
                 scale_factor: float = 0.25,
                 rotation_factor: float = 30.,
                 rotation_prob: float = 0.6,
                 ignore_index: int = 255):
        self.crop_size = tuple(crop_size)
        self.scale_factor = scale_factor
        self.rotation_factor = rotation_factor
        self.rotation_prob = rotation_prob
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        h, w = results['img'].shape[:2]
        out_h, out_w = self.crop_size
        box_w = fitted_box_width((h, w), self.crop_size)
        sf, rf = self.scale_factor, self.rotation_factor
        scale = np.clip(np.random.randn() * sf + 1, 1 - sf, 1 + sf)
        rotation = np.clip(np.random.randn() * rf, -2 * rf, 2 * rf) \
            if np.random.rand() <= self.rotation_prob else 0.
        matrix = person_affine_matrix(((w - 1) / 2, (h - 1) / 2),
                                      box_w * scale, rotation, self.crop_size)
        results['img'] = cv2.warpAffine(
            results['img'],
            matrix, (out_w, out_h),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0))
        for key in results.get('seg_fields', []):
            results[key] = cv2.warpAffine(
                results[key],
                matrix, (out_w, out_h),
                flags=cv2.INTER_NEAREST,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=self.ignore_index)
        results['img_shape'] = self.crop_size
        return results


@TRANSFORMS.register_module()
class SCHPAffineFit(BaseTransform):
    """The test-time input of the authors' LIP evaluation (HumanParsing/
    datasets/datasets.py ``LIPDataValSet``, evaluate.py): the whole image,
    its box widened or heightened to the crop's aspect ratio, warped onto
    the ``crop_size`` crop (h, w), centred, aspect kept, bilinear, border 0:
    a portrait and a landscape image alike fit into 576 (h) x 384 (w).

    The label is not warped (load it after this transform): their metric
    compares at the original size. The (2, 3) matrix of the warp and the
    crop size are stored for ``CE2PHead.predict``, which maps the logits
    back as their ``transform_parsing`` maps the prediction back (add
    ``'fit_matrix', 'fit_shape'`` to ``PackSegInputs``'s ``meta_keys``).

    Required keys: img. Modified keys: img, img_shape. Added keys:
    fit_matrix, fit_shape.

    Args:
        crop_size (tuple): (h, w) of the crop.
    """

    def __init__(self, crop_size: Sequence[int]):
        self.crop_size = tuple(crop_size)

    def transform(self, results: dict) -> dict:
        h, w = results['img'].shape[:2]
        out_h, out_w = self.crop_size
        matrix = person_affine_matrix(((w - 1) / 2, (h - 1) / 2),
                                      fitted_box_width((h, w), self.crop_size),
                                      0., self.crop_size)
        results['img'] = cv2.warpAffine(
            results['img'],
            matrix, (out_w, out_h),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0))
        results['img_shape'] = self.crop_size
        results['fit_matrix'] = matrix
        results['fit_shape'] = self.crop_size
        return results


@TRANSFORMS.register_module()
class AlignCornersRescale(BaseTransform):
    """The multi-scale test resize of the authors' LIP evaluation
    (HumanParsing/evaluate.py ``multi_scale_testing``: ``nn.Upsample(
    scale_factor=s, mode='bilinear', align_corners=True)`` of the crop):
    the image resized to ``floor(h * s) x floor(w * s)`` by torch's bilinear
    interpolation with ``align_corners=True``, kept in float32 (theirs
    resizes the normalised tensor; the per-channel normalisation commutes
    with it). mmseg's ``Resize`` would use cv2 (pixel centres aligned) and
    round to 8 bits.

    Required keys: img. Modified keys: img, img_shape. Added keys:
    scale_factor.

    Args:
        scale_factor (float): s.
    """

    def __init__(self, scale_factor: float):
        self.scale_factor = scale_factor

    def transform(self, results: dict) -> dict:
        img = np.ascontiguousarray(results['img'], dtype=np.float32)
        h, w = img.shape[:2]
        size = (int(h * self.scale_factor), int(w * self.scale_factor))
        x = torch.from_numpy(img).permute(2, 0, 1)[None]
        x = F.interpolate(x, size=size, mode='bilinear', align_corners=True)
        results['img'] = x[0].permute(1, 2, 0).numpy()
        results['img_shape'] = size
        results['scale_factor'] = (size[1] / w, size[0] / h)
        return results
