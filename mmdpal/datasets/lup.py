"""LUPerson-style pretraining data: a folder of person crops or a list file."""
import multiprocessing
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmengine.registry import DefaultScope

from mmdpal.registry import DATASETS, TRANSFORMS
from mmdpal.utils import random_stream
from .transforms.loading import BadImageError
from .utils import IMG_EXTENSIONS, scan_images


def too_many_bad_images(num_bad: int, total: int, max_fraction: float,
                        which: str) -> RuntimeError:
    """The error that stops training once more than ``max_fraction`` of
    the images could not be decoded (``which`` says where to look)."""
    return RuntimeError(
        f'{num_bad} of {total} images could not be decoded, more than '
        f'max_bad_fraction={max_fraction}: check the data ({which}) or '
        'raise max_bad_fraction in the dataset config')


@DATASETS.register_module()
class LUPersonDataset(BaseDataset):
    """Unlabelled single-person crops for DPAL pretraining (LUPerson).

    Images are listed either by ``ann_file`` (a text file, one image path per
    line relative to ``data_root/data_prefix['img_path']``, as written by
    ``tools/dataset_converters/make_lup_subset.py`` for LUP1M) or, without
    ``ann_file``, by scanning the image folder recursively.

    An image that cannot be decoded is skipped (another one is drawn) and
    remembered, across dataloader workers; ``BadImageLoggerHook`` counts the
    distinct bad images over all ranks and logs them. Once more than
    ``max_bad_fraction`` of the dataset has failed, training stops with an
    error (here as soon as one process sees it, in the hook for the union).

    With :meth:`set_random_stream` (called every epoch by
    ``ResumableRandomnessHook``), each sample is loaded and transformed with
    the global random generators seeded from ``(seed, epoch, index)``, in
    whichever process or dataloader worker (persistent or not) loads it:
    a resumed run draws the same augmentations as an uninterrupted one.

    Args:
        data_root (str): Root of the data.
        ann_file (str): Optional list file (relative to ``data_root``).
        data_prefix (dict): ``dict(img_path='images/')``: the image folder,
            relative to ``data_root``.
        max_bad_fraction (float): Fraction of undecodable images tolerated.
            Defaults to 0.01.
        **kwargs: Other arguments of :class:`mmengine.dataset.BaseDataset`.
    """

    def __init__(self,
                 data_root: str = '',
                 ann_file: str = '',
                 data_prefix: Optional[dict] = None,
                 pipeline: Sequence = (),
                 max_bad_fraction: float = 0.01,
                 **kwargs):
        # built in mmdpal's scope, so it works from any default scope
        with DefaultScope.overwrite_default_scope('mmdpal'):
            pipeline = [
                TRANSFORMS.build(t) if isinstance(t, dict) else t
                for t in pipeline
            ]
        self.max_bad_fraction = max_bad_fraction
        # shared with the dataloader workers, read by the main process:
        # a flag per bad image (allocated once the list is loaded) and the
        # random stream (on, seed, epoch)
        self._bad_flags = None
        self._stream = multiprocessing.RawArray('q', 3)
        super().__init__(
            data_root=data_root,
            ann_file=ann_file,
            data_prefix=data_prefix or dict(img_path=''),
            pipeline=pipeline,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix['img_path']
        if self.ann_file:
            if not osp.isfile(self.ann_file):
                raise FileNotFoundError(
                    f'LUPerson list file not found: {self.ann_file!r}. Write '
                    'it with tools/dataset_converters/make_lup_subset.py or '
                    'drop ann_file to scan the image folder.')
            with open(self.ann_file) as f:
                names = [line.strip() for line in f if line.strip()]
            source = f'list file {self.ann_file!r}'
        else:
            if not osp.isdir(img_dir):
                raise FileNotFoundError(
                    f'LUPerson image folder not found: {img_dir!r}. Set '
                    'data_root / data_prefix in the config (or --cfg-options '
                    'train_dataloader.dataset.data_root=...).')
            names = scan_images(img_dir)
            source = f'folder {img_dir!r}'
        if not names:
            raise ValueError(
                f'no images in {source} (looked for {IMG_EXTENSIONS}): point '
                'the config at a folder of person crops')
        return [dict(img_path=osp.join(img_dir, n)) for n in names]

    def full_init(self):
        if self._fully_initialized:
            return
        super().full_init()
        self._bad_flags = multiprocessing.RawArray('b', len(self))

    @property
    def num_bad_images(self) -> int:
        """Distinct images that failed to decode so far, over the workers
        of this process."""
        return len(self.bad_image_indices())

    def bad_image_indices(self) -> np.ndarray:
        """Indices of the images that failed to decode so far, over the
        workers of this process."""
        if self._bad_flags is None:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(np.frombuffer(self._bad_flags, dtype=np.int8))

    def set_random_stream(self, seed: Optional[int], epoch: int = 0) -> None:
        """Seed each sample's draws from ``(seed, epoch, index)`` from now
        on, in this process and its dataloader workers (persistent ones
        included); ``seed=None`` goes back to the unseeded global
        generators."""
        self._stream[:] = [seed is not None, seed or 0, epoch]

    def __getitem__(self, idx: int) -> dict:
        on, seed, epoch = self._stream[:]
        if not on:
            return super().__getitem__(idx)
        # the replacement drawn for a bad image comes from the stream too
        with random_stream(seed, epoch, idx):
            return super().__getitem__(idx)

    def prepare_data(self, idx: int):
        try:
            return super().prepare_data(idx)
        except BadImageError as e:
            self._bad_flags[idx] = 1  # idempotent: counted once
            num_bad = self.num_bad_images
            print_log(
                f'skipping an image: {e}', logger='current',
                level=30)  # WARNING
            if num_bad > self.max_bad_fraction * len(self):
                raise too_many_bad_images(num_bad, len(self),
                                          self.max_bad_fraction,
                                          f'last one: {e.filename!r}') from e
            return None  # BaseDataset draws another index
