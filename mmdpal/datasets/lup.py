"""LUPerson-style pretraining data: a folder of person crops or a list file."""
import multiprocessing
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mmdpal.registry import DATASETS, TRANSFORMS
from .transforms.loading import BadImageError
from .utils import IMG_EXTENSIONS, scan_images


@DATASETS.register_module()
class LUPersonDataset(BaseDataset):
    """Unlabelled single-person crops for DPAL pretraining (LUPerson).

    Images are listed either by ``ann_file`` (a text file, one image path per
    line relative to ``data_root/data_prefix['img_path']``, as written by
    ``tools/dataset_converters/make_lup_subset.py`` for LUP1M) or, without
    ``ann_file``, by scanning the image folder recursively.

    An image that cannot be decoded is skipped (another one is drawn), and
    counted across dataloader workers; the count is logged by
    ``BadImageLoggerHook``. Once more than ``max_bad_fraction`` of the
    dataset has failed, loading stops with an error.

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
        # built with mmdpal's registry, so it works from any default scope
        pipeline = [
            TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline
        ]
        self.max_bad_fraction = max_bad_fraction
        # shared with forked dataloader workers, read by the main process
        self._num_bad = multiprocessing.Value('i', 0)
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

    @property
    def num_bad_images(self) -> int:
        """Images that failed to decode so far, over all workers."""
        return self._num_bad.value

    def prepare_data(self, idx: int):
        try:
            return super().prepare_data(idx)
        except BadImageError as e:
            with self._num_bad.get_lock():
                self._num_bad.value += 1
                num_bad = self._num_bad.value
            print_log(
                f'skipping an image: {e}', logger='current',
                level=30)  # WARNING
            if num_bad > self.max_bad_fraction * len(self):
                raise RuntimeError(
                    f'{num_bad} of {len(self)} images could not be decoded, '
                    f'more than max_bad_fraction={self.max_bad_fraction}: '
                    f'check the data (last one: {e.filename!r}) or raise '
                    'max_bad_fraction in the dataset config') from e
            return None  # BaseDataset draws another index
