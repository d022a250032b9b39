import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio

from mmdpal.registry import TRANSFORMS


class BadImageError(Exception):
    """An image file that is missing, unreadable or cannot be decoded."""

    def __init__(self, filename: str, reason: str):
        super().__init__(f'{filename!r}: {reason}')
        self.filename = filename


@TRANSFORMS.register_module()
class LoadPersonImage(BaseTransform):
    """Load ``results['img_path']`` as a BGR uint8 image.

    Unlike mmcv's ``LoadImageFromFile`` every failure (missing file, empty or
    corrupt bytes) raises :class:`BadImageError`, which
    :class:`LUPersonDataset` counts and skips.

    Required keys: img_path. Added keys: img, img_shape, ori_shape.
    """

    def transform(self, results: dict) -> dict:
        filename = results['img_path']
        try:
            img_bytes = fileio.get(filename)
        except Exception as e:  # noqa: BLE001 (any storage backend error)
            raise BadImageError(filename, f'cannot read ({e})') from e
        img = mmcv.imfrombytes(img_bytes, flag='color', backend='cv2') \
            if img_bytes else None
        if img is None or img.size == 0:
            raise BadImageError(filename, 'cannot be decoded as an image')
        results['img'] = np.ascontiguousarray(img)
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
