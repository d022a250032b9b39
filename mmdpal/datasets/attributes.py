"""Pedestrian attribute recognition datasets in their released layouts."""
import os.path as osp
from typing import List

import numpy as np
from mmpretrain.datasets import MultiLabelDataset
from scipy.io import loadmat

from mmdpal.registry import DATASETS


@DATASETS.register_module()
class PA100K(MultiLabelDataset):
    """PA-100K (Liu et al., ICCV 2017), as released::

        data_root/annotation.mat   attributes (A x 1 names),
                                   {train,val,test}_images_name (N x 1),
                                   {train,val,test}_label (N x A, 0/1)
        data_root/data/000001.jpg

    Each sample has ``img_path`` and ``gt_label`` (the indices of its
    positive attributes, mmpretrain's multi-label format); the metainfo's
    ``classes`` are the 26 attribute names of the file.

    Args:
        data_root (str): The dataset folder.
        split (str | Sequence[str]): 'train', 'val', 'test' or several of
            them, e.g. ``('train', 'val')``. Defaults to 'train'.
        ann_file (str): The annotation file. Defaults to 'annotation.mat'.
        data_prefix (str): The image folder. Defaults to 'data'.
        **kwargs: Other arguments of mmpretrain's ``BaseDataset``.
    """
    LAYOUT = ('annotation.mat with attributes, {split}_images_name and '
              '{split}_label (N x A), and the images in data/')

    def __init__(self,
                 data_root: str,
                 split='train',
                 ann_file: str = 'annotation.mat',
                 data_prefix: str = 'data',
                 **kwargs):
        self.splits = (split, ) if isinstance(split, str) else tuple(split)
        unknown = set(self.splits) - {'train', 'val', 'test'}
        if unknown:
            raise ValueError(f'PA100K: split must be train, val or test, got '
                             f'{sorted(unknown)}')
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            **kwargs)

    def _error(self, problem: str) -> str:
        return (f'PA100K: {self.ann_file!r} {problem}; expected the released '
                f'layout: {self.LAYOUT}')

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(self._error('is missing'))
        ann = loadmat(self.ann_file)
        missing = [
            k for k in ['attributes'] + [
                f'{s}_{f}' for s in self.splits
                for f in ('images_name', 'label')
            ] if k not in ann
        ]
        if missing:
            raise ValueError(self._error(f'has no {missing}'))
        names = [str(np.ravel(a)[0]) for a in np.ravel(ann['attributes'])]
        self._metainfo['classes'] = tuple(names)
        data_list = []
        for split in self.splits:
            images = [
                str(np.ravel(n)[0])
                for n in np.ravel(ann[f'{split}_images_name'])
            ]
            labels = np.asarray(ann[f'{split}_label'])
            if labels.shape != (len(images), len(names)):
                raise ValueError(
                    self._error(
                        f'has {split}_label of shape {labels.shape} for '
                        f'{len(images)} {split}_images_name and '
                        f'{len(names)} attributes'))
            data_list += [
                dict(
                    img_path=osp.join(self.img_prefix, image),
                    gt_label=np.flatnonzero(label > 0))
                for image, label in zip(images, labels)
            ]
        return data_list
