"""Pedestrian attribute recognition datasets in their released layouts."""
import os.path as osp
import pickle
from typing import List

import numpy as np
from mmpretrain.datasets import MultiLabelDataset
from scipy.io import loadmat

from mmdpal.registry import DATASETS
from mmdpal.utils.options import check_choice
from .utils import layout_error


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
        for name in self.splits:
            check_choice('PA100K.split', name, ('train', 'val', 'test'))
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            **kwargs)

    def _error(self, problem: str) -> str:
        return layout_error('PA100K', self.ann_file, problem, self.LAYOUT)

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


# PETA's 35 evaluated attributes (of its 105) in the group order of Jia et
# al.'s PAR code (head, upper body, lower body, footwear, bag, age, gender):
# the ``label_idx.eval`` of its annotation files.
PETA_EVAL_ATTRIBUTES = (10, 18, 19, 30, 15, 7, 9, 11, 14, 21, 26, 29, 32, 33,
                        34, 6, 8, 12, 25, 27, 31, 13, 23, 24, 28, 4, 5, 17, 20,
                        22, 0, 1, 2, 3, 16)


class _EasyDict(dict):
    """Stands in for ``easydict.EasyDict`` (a dict whose items are also
    attributes) when a PETA annotation pickle is read, so that reading it
    does not need easydict."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class _AnnotationUnpickler(pickle.Unpickler):
    """Unpickles EasyDicts, numpy arrays and plain builtin values only."""
    NUMPY = {'_reconstruct', 'scalar', '_frombuffer', 'ndarray', 'dtype'}
    NUMPY_2_NAMES = {
        'numpy.core.multiarray': 'numpy._core.multiarray',
        'numpy.core.numeric': 'numpy._core.numeric'
    }
    BUILTINS = {
        'bool', 'bytearray', 'bytes', 'complex', 'dict', 'float', 'frozenset',
        'int', 'list', 'range', 'set', 'slice', 'str', 'tuple'
    }

    def find_class(self, module: str, name: str):
        if (module, name) == ('easydict', 'EasyDict'):
            return _EasyDict
        if np.lib.NumpyVersion(np.__version__) >= '2.0.0':
            # arrays pickled by numpy 1.x, as the released files are
            module = self.NUMPY_2_NAMES.get(module, module)
        numpy = module in ('numpy', 'numpy._core.multiarray',
                           'numpy._core.numeric', 'numpy.core.multiarray',
                           'numpy.core.numeric')
        if ((numpy and name in self.NUMPY)
                or (module == 'builtins' and name in self.BUILTINS)):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f'it holds a {module}.{name}, which is not an EasyDict, a numpy '
            f'array or a builtin value; refused')


@DATASETS.register_module()
class PETA(MultiLabelDataset):
    """PETA (Deng et al., ACM MM 2014) with its 35 evaluated attributes, from
    either of its released annotation files::

        data_root/dataset_zs_run0.pkl   PETA-zs, the zero-shot (disjoint
                                        identities) split of "Rethinking of
                                        Pedestrian Attribute Recognition"
                                        (Jia et al., 2021), used by DPAL's
                                        Table 1: a pickled EasyDict with
                                        image_name (N), label (N x 105),
                                        attr_name (105), label_idx.eval
                                        and partition.{train,val,trainval,
                                        test} (0-based image indices)
        data_root/PETA.mat              the original release: the struct
                                        peta with data (N x (4 + 105),
                                        labels from column 4), the 105
                                        attribute names and 5 random
                                        partitions of 1-based train / val /
                                        test indices
        data_root/images/00001.png      ... (N images)

    The labels are the 35 attributes of ``label_idx.eval`` (the pickle) or
    :data:`PETA_EVAL_ATTRIBUTES` (PETA.mat), in that group order; a label
    of 2 counts as 0, as in Jia et al.'s reader. Each sample has
    ``img_path`` and ``gt_label`` (the indices of its positive attributes);
    the metainfo's ``classes`` are the 35 attribute names. The pickle's
    ``root`` (the authors' image folder) is not used: images are read from
    ``data_root/data_prefix``.

    Args:
        data_root (str): The dataset folder.
        split (str): 'train', 'val', 'trainval' (train then val) or 'test'.
            Defaults to 'trainval'.
        ann_file (str): A pickle of Jia et al.'s format (e.g.
            'dataset_zs_run0.pkl') or the original 'PETA.mat' (a ``.mat``
            name). Defaults to 'dataset_zs_run0.pkl'.
        partition (int): Which of the file's partitions: 0-4 for PETA.mat
            and for a pickle that holds a list of them; a pickle with one
            partition (PETA-zs) takes 0 only. Defaults to 0.
        data_prefix (str): The image folder. Defaults to 'images'.
        **kwargs: Other arguments of mmpretrain's ``BaseDataset``.
    """
    SPLITS = ('train', 'val', 'trainval', 'test')
    PKL_LAYOUT = ('a pickled EasyDict with image_name (N), label (N x A), '
                  'attr_name (A), label_idx.eval and partition.{train,val,'
                  'trainval,test} of 0-based indices, and the images in '
                  'images/')
    MAT_LAYOUT = ('PETA.mat with the struct peta: data (N x (4 + A)), '
                  'attribute names (A x 1), partitions (5 x 1 structs of '
                  '1-based train, val and test indices), and the images '
                  'images/00001.png ...')

    def __init__(self,
                 data_root: str,
                 split: str = 'trainval',
                 ann_file: str = 'dataset_zs_run0.pkl',
                 partition: int = 0,
                 data_prefix: str = 'images',
                 **kwargs):
        check_choice('PETA.split', split, self.SPLITS)
        self.split = split
        self.partition = partition
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            **kwargs)

    def _error(self, problem: str) -> str:
        layout = (
            self.MAT_LAYOUT
            if self.ann_file.endswith('.mat') else self.PKL_LAYOUT)
        return layout_error('PETA', self.ann_file, problem, layout)

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(self._error('is missing'))
        if self.ann_file.endswith('.mat'):
            images, labels, names, eval_idx, indices = self._load_mat()
        else:
            images, labels, names, eval_idx, indices = self._load_pkl()
        if labels.ndim != 2 or labels.shape != (len(images), len(names)):
            raise ValueError(
                self._error(f'has labels of shape {labels.shape} for '
                            f'{len(images)} images and {len(names)} '
                            f'attribute names'))
        eval_idx = np.asarray(eval_idx, dtype=np.int64)
        if eval_idx.size and not 0 <= eval_idx.min() <= eval_idx.max() < len(
                names):
            raise ValueError(
                self._error(f'evaluates attributes {eval_idx.tolist()}, not '
                            f'all below its {len(names)} attributes'))
        indices = np.asarray(indices, dtype=np.int64).ravel()
        if indices.size and not 0 <= indices.min() <= indices.max() < len(
                images):
            raise ValueError(
                self._error(f'has {self.split} image indices from '
                            f'{indices.min()} to {indices.max()}, outside '
                            f'its {len(images)} images (0-based)'))
        self._metainfo['classes'] = tuple(names[i] for i in eval_idx)
        positive = labels[:, eval_idx] == 1  # 2 (unknown) counts as 0
        return [
            dict(
                img_path=osp.join(self.img_prefix, images[i]),
                gt_label=np.flatnonzero(positive[i])) for i in indices
        ]

    def _load_pkl(self):
        try:
            with open(self.ann_file, 'rb') as f:
                ann = _AnnotationUnpickler(f).load()
        except Exception as e:
            raise ValueError(
                self._error(
                    f'cannot be read ({type(e).__name__}: {e})')) from e
        keys = ('image_name', 'label', 'attr_name', 'label_idx', 'partition')
        if not isinstance(ann, dict):
            raise ValueError(self._error(f'holds a {type(ann).__name__}'))
        missing = [k for k in keys if k not in ann]
        if not missing and 'eval' not in ann['label_idx']:
            missing = ['label_idx.eval']
        if missing:
            raise ValueError(self._error(f'has no {missing}'))
        if self.split not in ann['partition']:
            raise ValueError(
                self._error(f'has no partition.{self.split} (only '
                            f'{sorted(ann["partition"])})'))
        indices = ann['partition'][self.split]
        if isinstance(indices, list):  # one array per partition
            indices = self._select(indices)
        elif self.partition != 0:
            raise ValueError(
                self._error(f'has one partition (0), not '
                            f'partition={self.partition}'))
        images = [str(n) for n in ann['image_name']]
        names = [str(n) for n in ann['attr_name']]
        return (images, np.asarray(ann['label']), names,
                ann['label_idx']['eval'], indices)

    def _select(self, partitions: list):
        if not 0 <= self.partition < len(partitions):
            raise ValueError(
                self._error(f'has {len(partitions)} partitions, not '
                            f'partition={self.partition}'))
        return partitions[self.partition]

    def _load_mat(self):
        try:
            peta = loadmat(self.ann_file)['peta'][0][0]
            data = np.asarray(peta[0])
            names = [str(np.ravel(n[0])[0]) for n in peta[1]]
            part = self._select([p[0][0][0] for p in peta[3]])
            train, val, test = (
                np.asarray(part[k])[:, 0].astype(np.int64) - 1
                for k in range(3))
        except (KeyError, IndexError, TypeError) as e:
            raise ValueError(
                self._error(f'is not laid out as released '
                            f'({type(e).__name__}: {e})')) from e
        if data.ndim != 2 or data.shape[1] != 4 + len(names):
            raise ValueError(
                self._error(f'has data of shape {data.shape} for '
                            f'{len(names)} attribute names (expected N x '
                            f'{4 + len(names)})'))
        indices = dict(
            train=train,
            val=val,
            trainval=np.concatenate([train, val]),
            test=test)[self.split]
        images = [f'{i + 1:05d}.png' for i in range(len(data))]
        return images, data[:, 4:], names, PETA_EVAL_ATTRIBUTES, indices
