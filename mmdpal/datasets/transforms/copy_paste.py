import os.path as osp
from typing import Sequence, Tuple

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from mmdpal.registry import TRANSFORMS
from ..utils import IMG_EXTENSIONS, scan_images


@TRANSFORMS.register_module()
class CopyPasteMultiPerson(BaseTransform):
    """Make the multi-person image I_2 of DPAL by copy-paste (Sec. 4.1).

    A random crop of a background image (from ``background_dir``, images
    without people) is resized to ``size``; two persons, the last view in
    ``results['img']`` and the first (global) view, both resized to
    ``person_size``, are pasted side by side (left half / right half, random
    position) and alpha-blended ``alpha`` person / ``1 - alpha`` background
    (the authors' recipe, SAIP's data pipeline). The new view is appended to
    ``results['img']``; each pasted person's box (x1, y1, x2, y2) and binary
    mask are kept.

    Required keys: img (list of HxWx3 views). Modified keys: img.
    Added keys: person_boxes (2, 4) float32, person_masks (2, H, W) uint8.

    Args:
        background_dir (str): Folder of person-free background images.
        size (tuple): (h, w) of the multi-person image. Defaults to (256, 256).
        person_size (tuple): (h, w) of each pasted person. Defaults to
            (128, 96).
        background_scale (tuple): Area range of the background crop.
            Defaults to (0.2, 1.0).
        alpha (float): Weight of the person in the blend. Defaults to 0.7.
    """

    def __init__(self,
                 background_dir: str,
                 size: Sequence[int] = (256, 256),
                 person_size: Sequence[int] = (128, 96),
                 background_scale: Tuple[float, float] = (0.2, 1.0),
                 alpha: float = 0.7):
        if not osp.isdir(background_dir):
            raise FileNotFoundError(
                f'background folder for the copy-paste view not found: '
                f'{background_dir!r}. Point CopyPasteMultiPerson.'
                'background_dir at a folder of person-free images.')
        self.backgrounds = [
            osp.join(background_dir, n) for n in scan_images(background_dir)
        ]
        if not self.backgrounds:
            raise ValueError(f'no images {IMG_EXTENSIONS} in the background '
                             f'folder {background_dir!r}')
        self.size = tuple(size)
        self.person_size = tuple(person_size)
        if self.person_size[0] > self.size[0] or \
                2 * self.person_size[1] > self.size[1]:
            raise ValueError(f'two persons of {self.person_size} do not fit '
                             f'side by side in {self.size}')
        self.background_scale = background_scale
        self.alpha = alpha

    def _background(self) -> np.ndarray:
        path = self.backgrounds[np.random.randint(len(self.backgrounds))]
        img = mmcv.imread(path)
        if img is None:
            raise OSError(f'background image {path!r} cannot be decoded')
        H, W = img.shape[:2]
        area = np.random.uniform(*self.background_scale) * H * W
        ratio = self.size[1] / self.size[0]
        h = int(min(H, round(np.sqrt(area / ratio))))
        w = int(min(W, round(h * ratio)))
        y = np.random.randint(0, H - h + 1)
        x = np.random.randint(0, W - w + 1)
        crop = img[y:y + h, x:x + w]
        return mmcv.imresize(crop, self.size[::-1], interpolation='bicubic')

    def transform(self, results: dict) -> dict:
        views = results['img']
        canvas = self._background().astype(np.float32)
        H, W = self.size
        ph, pw = self.person_size
        persons = [views[-1], views[0]]
        boxes = np.zeros((2, 4), np.float32)
        masks = np.zeros((2, H, W), np.uint8)
        for i, person in enumerate(persons):
            person = mmcv.imresize(person, (pw, ph), interpolation='bicubic')
            half = W // 2
            x = np.random.randint(i * half, (i + 1) * half - pw + 1)
            y = np.random.randint(0, H - ph + 1)
            region = canvas[y:y + ph, x:x + pw]
            canvas[y:y + ph,
                   x:x + pw] = self.alpha * person + (1 - self.alpha) * region
            boxes[i] = (x, y, x + pw, y + ph)
            masks[i, y:y + ph, x:x + pw] = 1
        results['img'] = list(views) + [
            np.clip(canvas, 0, 255).round().astype(np.uint8)
        ]
        results['person_boxes'] = boxes
        results['person_masks'] = masks
        return results

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}(backgrounds={len(self.backgrounds)}'
            f', size={self.size}, person_size={self.person_size}, '
            f'alpha={self.alpha})')
