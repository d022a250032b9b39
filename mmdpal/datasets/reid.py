"""Person re-identification datasets in their released layouts: Market-1501
and MSMT17."""
import os
import os.path as osp
import re
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dataset import BaseDataset

from mmdpal.registry import DATASETS
from mmdpal.utils.options import check_choice
from .utils import layout_error

# (image path, person id, camera id)
Record = Tuple[str, int, int]


class _PersonReIDDataset(BaseDataset):
    """A ReID split in the sample format of mmdet's ``ReIDDataset`` (what
    its ``PackReIDInputs`` and ``BaseReID`` take), read from a released
    layout instead of an mmdet list file.

    Each sample has ``img_path``, ``gt_label`` (the person id; in the
    ``'train'`` split relabelled to 0..N-1 for the identity classifier),
    ``camera_id`` and ``is_query``. ``split='test'`` is the query set
    followed by the gallery, the input of
    :class:`mmdpal.evaluation.ReIDMetric`. A subclass reads its layout in
    ``_read(part)``, part being 'train', 'query' or 'gallery', as a list of
    (image path, person id, camera id).

    With ``triplet_sampler=dict(num_ids=P, ins_per_id=K)``, an item is one
    P x K batch, sampled as mmdet's ``ReIDDataset`` does (same argument,
    same output: each key a list of P * K values): K images of the item's
    identity, then K images of each of P - 1 other identities drawn at
    random (images with replacement). (mmdet's class is not subclassed:
    ``import mmdpal`` does not need mmdet.)

    Args:
        data_root (str): The dataset folder.
        split (str): 'train', 'query', 'gallery' or 'test' (query +
            gallery).
        triplet_sampler (dict, optional): ``dict(num_ids, ins_per_id)`` for
            P x K items, or None for one image per item. Defaults to None.
        **kwargs: Other arguments of :class:`mmengine.dataset.BaseDataset`.
    """
    SPLITS = ('train', 'query', 'gallery', 'test')
    LAYOUT = ''  # the expected layout, for error messages

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 triplet_sampler: Optional[dict] = None,
                 **kwargs):
        check_choice(f'{type(self).__name__}.split', split, self.SPLITS)
        self.split = split
        self.triplet_sampler = triplet_sampler
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        if self.split == 'train':
            records = self._read('train')
            relabel = {
                pid: i
                for i, pid in enumerate(sorted({r[1]
                                                for r in records}))
            }
            data_list = [
                self._info(path, relabel[pid], cam, False)
                for path, pid, cam in records
            ]
        else:
            parts = ['query', 'gallery'
                     ] if self.split == 'test' else [self.split]
            data_list = [
                self._info(path, pid, cam, part == 'query') for part in parts
                for path, pid, cam in self._read(part)
            ]
        if self.triplet_sampler is not None:
            by_id = {}
            for idx, info in enumerate(data_list):
                by_id.setdefault(int(info['gt_label']), []).append(idx)
            self._indices_of_id = {
                pid: np.array(idxs)
                for pid, idxs in by_id.items()
            }
            num_ids = self.triplet_sampler['num_ids']
            if len(by_id) < num_ids:
                raise ValueError(
                    f'{type(self).__name__}: triplet_sampler wants '
                    f'{num_ids} identities per batch but {self.data_root!r} '
                    f'({self.split}) has {len(by_id)}')
        return data_list

    def prepare_data(self, idx: int) -> Any:
        if self.triplet_sampler is None:
            return super().prepare_data(idx)
        return self.pipeline(self._pk_batch(idx, **self.triplet_sampler))

    def _pk_batch(self, idx: int, num_ids: int, ins_per_id: int) -> dict:
        """The P x K batch of item ``idx``, as a dict of lists."""
        anchor = int(self.get_data_info(idx)['gt_label'])
        others = [pid for pid in self._indices_of_id if pid != anchor]
        pids = [anchor] + list(
            np.random.choice(others, num_ids - 1, replace=False))
        infos = []
        for pid in pids:
            idxs = self._indices_of_id[pid]
            infos += [
                self.get_data_info(int(i))
                for i in np.random.choice(idxs, ins_per_id, replace=True)
            ]
        return {key: [info[key] for info in infos] for key in infos[0]}

    @staticmethod
    def _info(path: str, pid: int, camera_id: int, is_query: bool) -> dict:
        return dict(
            img_path=path,
            gt_label=np.array(pid, dtype=np.int64),
            camera_id=camera_id,
            is_query=is_query)

    def _error(self, path: str, problem: str) -> str:
        return layout_error(type(self).__name__, path, problem, self.LAYOUT)


@DATASETS.register_module()
class Market1501(_PersonReIDDataset):
    """Market-1501 (Zheng et al., ICCV 2015), as released::

        data_root/bounding_box_train/0002_c1s1_000451_03.jpg  (train)
        data_root/query/0001_c1s1_001051_00.jpg               (query)
        data_root/bounding_box_test/0000_c1s1_000151_01.jpg   (gallery)

    A file name gives the person id (``0002``) and the camera (``c1``).
    As in the standard protocol, junk images (id ``-1``) are left out and
    distractors (id ``0000``) stay in the gallery as negatives; neither is
    used for training. Other files (``Thumbs.db``) are ignored.

    Args: see :class:`_PersonReIDDataset`.
    """
    FOLDERS = dict(
        train='bounding_box_train', query='query', gallery='bounding_box_test')
    LAYOUT = ('bounding_box_train/, query/ and bounding_box_test/ of '
              'PID_cCsS_FRAME_BOX.jpg files, e.g. 0002_c1s1_000451_03.jpg')
    NAME = re.compile(r'^(-1|\d{4})_c(\d+)s\d+_\d+_\d+\.jpg$')

    def _read(self, part: str) -> List[Record]:
        folder = osp.join(self.data_root, self.FOLDERS[part])
        if not osp.isdir(folder):
            raise FileNotFoundError(self._error(folder, 'is missing'))
        records = []
        for name in sorted(os.listdir(folder)):
            if not name.lower().endswith('.jpg'):
                continue
            match = self.NAME.match(name)
            if match is None:
                raise ValueError(
                    self._error(
                        osp.join(folder, name), 'is not a Market-1501 name'))
            pid, cam = int(match.group(1)), int(match.group(2))
            if pid == -1 or (pid == 0 and part != 'gallery'):
                continue  # junk; distractors only as gallery negatives
            records.append((osp.join(folder, name), pid, cam))
        if not records:
            raise ValueError(self._error(folder, 'has no images'))
        return records


@DATASETS.register_module()
class MSMT17(_PersonReIDDataset):
    """MSMT17 (Wei et al., CVPR 2018), as released (``MSMT17_V1``)::

        data_root/train/0000/0000_000_01_0303morning_0015_0.jpg
        data_root/test/0000/0000_000_01_0303morning_0008_0.jpg
        data_root/list_train.txt   lines "0000/0000_000_01_..._0.jpg 0"
        data_root/list_val.txt, list_query.txt, list_gallery.txt

    The list files give the image (relative to ``train/`` or ``test/``) and
    its person id; the camera is the third field of the file name (``01``).
    Training uses ``list_train.txt`` and ``list_val.txt`` together, as
    SOLIDER's (TransReID's) MSMT17 loader does.

    Args:
        train_lists (Sequence[str]): The list files of the training split.
            Defaults to ('list_train.txt', 'list_val.txt').
        others: see :class:`_PersonReIDDataset`.
    """
    LAYOUT = ('train/ and test/ image folders with list_train.txt, '
              'list_val.txt, list_query.txt and list_gallery.txt of '
              '"PID_FOLDER/PID_INDEX_CAMERA_TIME_FRAME_BOX.jpg PID" lines')

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 train_lists: Sequence[str] = ('list_train.txt',
                                               'list_val.txt'),
                 **kwargs):
        self.train_lists = tuple(train_lists)
        super().__init__(data_root=data_root, split=split, **kwargs)

    def _read(self, part: str) -> List[Record]:
        if part == 'train':
            lists, folder = self.train_lists, 'train'
        else:
            lists, folder = (f'list_{part}.txt', ), 'test'
        records = []
        for list_name in lists:
            list_file = osp.join(self.data_root, list_name)
            if not osp.isfile(list_file):
                raise FileNotFoundError(self._error(list_file, 'is missing'))
            with open(list_file) as f:
                lines = [line.split() for line in f if line.strip()]
            for num, fields in enumerate(lines, 1):
                try:
                    rel, pid = fields
                    cam = int(osp.basename(rel).split('_')[2])
                    pid = int(pid)
                except (ValueError, IndexError):
                    raise ValueError(
                        self._error(
                            list_file, f'line {num} ({" ".join(fields)!r}) '
                            'does not parse')) from None
                records.append((osp.join(self.data_root, folder,
                                         rel), pid, cam))
        if not records:
            raise ValueError(self._error(lists[0], 'lists no images'))
        return records
