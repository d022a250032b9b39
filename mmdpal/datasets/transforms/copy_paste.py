import os.path as osp
from typing import List, Optional, Sequence

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform, Compose

from mmdpal.registry import TRANSFORMS
from mmdpal.utils.options import check_choice
from ..utils import IMG_EXTENSIONS, scan_images

_PERSON_INTERPOLATION = {
    'nearest': cv2.INTER_NEAREST,
    'bicubic': cv2.INTER_CUBIC
}


@TRANSFORMS.register_module()
class CopyPasteMultiPerson(BaseTransform):
    """Make the multi-person image I_2 of DPAL by copy-paste (Sec. 4.1).

    A background image (from ``background_dir``, images without people) goes
    through ``background_pipeline``, which must give a ``size`` image (by
    default a random-resized crop: area 0.2-1.0, aspect ratio 3/4-4/3,
    bicubic, no colour change; the DPAL configs add the authors' flip,
    colour jitter, grayscale, blur and solarisation). Two persons, the last
    view in ``results['img']`` and the first (global) view, both resized to
    ``person_size`` with ``person_interpolation``, are pasted side by side
    (left half / right half, random position) and alpha-blended ``alpha``
    person / ``1 - alpha`` background (the authors' recipe, SAIP's data
    pipeline). The new view is appended to ``results['img']``. With
    ``box_masks`` the box of each pasted person is also given (SAIP's
    cross-scale search targets), else none is made.

    Randomness comes from ``np.random`` only (seeded per worker by mmengine).

    Required keys: img (list of HxWx3 views). Modified keys: img. Added
    keys: paste_masks (with ``box_masks``).

    Args:
        background_dir (str): Folder of person-free background images.
        size (tuple): (h, w) of the multi-person image. Defaults to (256, 256).
        person_size (tuple): (h, w) of each pasted person. Defaults to
            (128, 96).
        background_pipeline (list[dict], optional): Transforms that make a
            ``size`` background from the decoded image (key ``img``).
            Defaults to None: ``ViewAugment(size, crop_scale=(0.2, 1.0),
            crop_ratio=(3 / 4, 4 / 3), flip_prob=0)``.
        person_interpolation (str): How a person that is not ``person_size``
            already is resized: 'nearest' (the authors' code: torch's default
            ``interpolate``) or 'bicubic'. Defaults to 'nearest'.
        alpha (float): Weight of the person in the blend. Defaults to 0.7.
        box_masks (bool): Also store ``results['paste_masks']``, a (2, H, W)
            uint8 array, 1 inside the box of the last view (left) and of the
            first view (right). Defaults to False.
    """

    def __init__(self,
                 background_dir: str,
                 size: Sequence[int] = (256, 256),
                 person_size: Sequence[int] = (128, 96),
                 background_pipeline: Optional[List[dict]] = None,
                 person_interpolation: str = 'nearest',
                 alpha: float = 0.7,
                 box_masks: bool = False):
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
        if background_pipeline is None:
            background_pipeline = [
                dict(
                    type='ViewAugment',
                    size=self.size,
                    crop_scale=(0.2, 1.0),
                    crop_ratio=(3 / 4, 4 / 3),
                    flip_prob=0.)
            ]
        # built in the mmdpal scope (mmpretrain's transforms included)
        self.background_pipeline = Compose([
            TRANSFORMS.build(t) if isinstance(t, dict) else t
            for t in background_pipeline
        ])
        check_choice('CopyPasteMultiPerson.person_interpolation',
                     person_interpolation, sorted(_PERSON_INTERPOLATION))
        self.person_interpolation = person_interpolation
        if not 0 <= alpha <= 1:
            raise ValueError(
                f'CopyPasteMultiPerson.alpha must be in [0, 1], got {alpha}')
        self.alpha = alpha
        self.box_masks = box_masks

    def background(self) -> np.ndarray:
        """A random background, through ``background_pipeline``."""
        path = self.backgrounds[np.random.randint(len(self.backgrounds))]
        img = mmcv.imread(path)
        if img is None:
            raise OSError(f'background image {path!r} cannot be decoded')
        img = self.background_pipeline(dict(img=img, img_path=path))['img']
        if img.shape[:2] != self.size:
            raise ValueError(
                f'CopyPasteMultiPerson.background_pipeline gives '
                f'{img.shape[:2]} images, but size is {self.size}: make the '
                'pipeline\'s last resize match size')
        return img

    def transform(self, results: dict) -> dict:
        views = results['img']
        canvas = self.background()  # a new array: pasted into in place
        H, W = self.size
        ph, pw = self.person_size
        masks = np.zeros((2, H, W), np.uint8)
        for i, person in enumerate((views[-1], views[0])):
            if person.shape[:2] != self.person_size:
                person = cv2.resize(
                    person, (pw, ph),
                    interpolation=_PERSON_INTERPOLATION[
                        self.person_interpolation])
            half = W // 2
            x = np.random.randint(i * half, (i + 1) * half - pw + 1)
            y = np.random.randint(0, H - ph + 1)
            region = canvas[y:y + ph, x:x + pw]
            # rounded and clipped to uint8, as a float blend then round
            blend = cv2.addWeighted(person, self.alpha, region, 1 - self.alpha,
                                    0.)
            region[...] = blend
            masks[i, y:y + ph, x:x + pw] = 1
        results['img'] = list(views) + [canvas]
        if self.box_masks:
            results['paste_masks'] = masks
        return results

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}(backgrounds={len(self.backgrounds)}'
            f', size={self.size}, person_size={self.person_size}, '
            f'background_pipeline={self.background_pipeline}, '
            f'person_interpolation={self.person_interpolation}, '
            f'alpha={self.alpha}, box_masks={self.box_masks})')
