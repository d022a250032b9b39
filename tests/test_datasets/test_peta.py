"""PETA read from both released annotation files, generated here in their
real formats: Jia et al.'s PETA-zs pickle (an ``easydict.EasyDict``, read
without easydict installed) and the original PETA.mat (a MATLAB struct
written with scipy); the 35 evaluated attributes in group order, labels of
2 read as 0, the partitions, and one-line errors for bad files."""
import os.path as osp
import pickle
import sys

import numpy as np
import pytest
from mmdpal_testing import (PETA_ATTRIBUTES, PETA_ZS_SPLIT, pickle_as_easydict,
                            write_peta)
from scipy.io import loadmat, savemat

from mmdpal.datasets import PETA
from mmdpal.datasets.attributes import (PETA_EVAL_ATTRIBUTES,
                                        _AnnotationUnpickler)


@pytest.fixture(scope='module')
def peta(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('peta'))
    return root, write_peta(root)


def names(dataset):
    return [
        osp.basename(dataset.get_data_info(i)['img_path'])
        for i in range(len(dataset))
    ]


def load_zs(root):
    with open(osp.join(root, 'dataset_zs_run0.pkl'), 'rb') as f:
        return _AnnotationUnpickler(f).load()


def test_peta_zs_reads_the_pickle_without_easydict(peta):
    root, _ = peta
    assert 'easydict' not in sys.modules
    test = PETA(data_root=root, split='test')
    assert names(test) == [
        '00003.png', '00010.png', '00011.png', '00012.png', '00013.png',
        '00014.png', '00015.png', '00016.png'
    ]
    # image 00003.png: accessoryHat (10) and personalMale (16) are 1, the
    # colour upperBodyBlack (35) is 1 but not evaluated, personalLess30 (0)
    # is 2, which reads as 0
    first = test.get_data_info(0)
    assert first['img_path'] == osp.join(root, 'images', '00003.png')
    assert first['gt_label'].tolist() == [0, 34]
    classes = test.metainfo['classes']
    assert len(classes) == 35
    assert (classes[0], classes[30],
            classes[34]) == ('accessoryHat', 'personalLess30', 'personalMale')
    assert names(PETA(data_root=root, split='trainval')) == [
        '00001.png', '00002.png', '00004.png', '00005.png', '00006.png',
        '00007.png', '00008.png', '00009.png'
    ]
    assert len(PETA(data_root=root, split='val')) == 2


def test_easydict_state_restores(peta):
    """EasyDict pickles its items and its __dict__; both come back, nested
    EasyDicts too, with attribute access."""
    root, written = peta
    ann = load_zs(root)
    assert 'easydict' not in sys.modules
    assert isinstance(ann, dict) and isinstance(ann.partition, dict)
    assert set(ann) == set(vars(ann)) == {
        'description', 'reorder', 'root', 'image_name', 'label', 'attr_name',
        'label_idx', 'partition', 'weight_train', 'weight_trainval'
    }
    assert ann.partition is ann['partition']
    assert ann.partition.test.tolist() == PETA_ZS_SPLIT['test']
    assert ann.label_idx.eval == list(PETA_EVAL_ATTRIBUTES)
    assert ann.label_idx.extra == range(79, 105)
    assert np.array_equal(ann.label, written['labels'])
    with pytest.raises(AttributeError):
        ann.no_such_key


def test_pickle_written_by_numpy_1(tmp_path):
    """The released pickles were written by numpy 1.x (and Python 3.6 or
    3.7: protocol 3), whose arrays reconstruct from numpy.core (numpy._core
    in numpy 2)."""
    root = str(tmp_path)
    write_peta(root)
    path = osp.join(root, 'dataset_zs_run0.pkl')
    pickle_as_easydict(path, load_zs(root), protocol=3)
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data.replace(b'numpy._core.', b'numpy.core.'))
    assert b'numpy.core.multiarray\n_reconstruct' in data.replace(
        b'numpy._core.', b'numpy.core.')
    ann = load_zs(root)
    assert ann.partition.test.tolist() == PETA_ZS_SPLIT['test']
    assert PETA(
        data_root=root,
        split='test').get_data_info(0)['gt_label'].tolist() == [0, 34]


def test_labels_of_2_read_as_0(peta):
    root, written = peta
    raw = written['labels'][:, PETA_EVAL_ATTRIBUTES]
    dataset = PETA(data_root=root, split='trainval')
    indices = PETA_ZS_SPLIT['train'] + PETA_ZS_SPLIT['val']
    assert (raw[indices] == 2).sum() > 0  # the fixture has unknowns
    for k, i in enumerate(indices):
        gt = dataset.get_data_info(k)['gt_label'].tolist()
        assert gt == np.flatnonzero(raw[i] == 1).tolist()


def test_peta_mat_partitions(peta):
    root, written = peta
    part = written['partitions'][3]
    trainval, test = (
        PETA(data_root=root, split=split, ann_file='PETA.mat', partition=3)
        for split in ('trainval', 'test'))
    assert names(trainval) == [
        f'{i + 1:05d}.png'
        for i in np.concatenate([part['train'], part['val']])
    ]
    assert names(test) == [f'{i + 1:05d}.png' for i in part['test']]
    assert test.metainfo['classes'] == tuple(PETA_ATTRIBUTES[i]
                                             for i in PETA_EVAL_ATTRIBUTES)
    # image 00003.png (index 2) has the same labels as in the pickle
    infos = [d.get_data_info(k) for d in (trainval, test) for k in range(8)]
    third, = [i for i in infos if i['img_path'].endswith('00003.png')]
    assert third['gt_label'].tolist() == [0, 34]


def one_line(excinfo, *parts):
    message = str(excinfo.value)
    assert '\n' not in message
    for part in parts:
        assert part in message, message
    return message


def test_missing_file_and_unknown_split(tmp_path):
    for ann_file in ('dataset_zs_run0.pkl', 'PETA.mat'):
        with pytest.raises(FileNotFoundError) as excinfo:
            PETA(data_root=str(tmp_path), ann_file=ann_file)
        one_line(excinfo, str(tmp_path / ann_file), 'expected the released')
    with pytest.raises(ValueError, match="'gallery'"):
        PETA(data_root=str(tmp_path), split='gallery')


def test_bad_pickles(tmp_path):
    root = str(tmp_path)
    write_peta(root)
    path = osp.join(root, 'dataset_zs_run0.pkl')
    ann = load_zs(root)
    with pytest.raises(ValueError) as excinfo:
        PETA(data_root=root, partition=1)
    one_line(excinfo, path, 'one partition')

    pickle_as_easydict(path, dict(ann, label=ann.label[:, :100]))
    with pytest.raises(ValueError) as excinfo:
        PETA(data_root=root)
    one_line(excinfo, path, '(16, 100)', 'label (N x A)')

    partition = dict(ann.partition, test=np.array([2, 16]))
    pickle_as_easydict(path, dict(ann, partition=partition))
    with pytest.raises(ValueError) as excinfo:
        PETA(data_root=root, split='test')
    one_line(excinfo, path, 'from 2 to 16', '16 images')

    del partition['val']
    pickle_as_easydict(path, dict(ann, partition=partition))
    with pytest.raises(ValueError) as excinfo:
        PETA(data_root=root, split='val')
    one_line(excinfo, path, 'partition.val')

    with open(path, 'wb') as f:  # any other class is refused, not run
        pickle.dump(dict(ann, label=Call(print, 'not printed')), f)
    with pytest.raises(ValueError) as excinfo:
        PETA(data_root=root)
    one_line(excinfo, path, 'builtins.print')


class Call:

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def test_bad_mat_files(tmp_path):
    root = str(tmp_path)
    write_peta(root)
    path = osp.join(root, 'PETA.mat')
    with pytest.raises(ValueError) as excinfo:
        PETA(data_root=root, ann_file='PETA.mat', partition=5)
    one_line(excinfo, path, '5 partitions')

    peta = loadmat(path)['peta']
    data = peta[0, 0]['data']
    peta[0, 0]['data'] = data[:, :100]
    savemat(path, dict(peta=peta))
    with pytest.raises(ValueError) as excinfo:
        PETA(data_root=root, ann_file='PETA.mat')
    one_line(excinfo, path, '(16, 100)', 'data (N x (4 + A))')

    peta[0, 0]['data'] = data
    peta[0, 0]['partition_attribute'][0, 0][0, 0]['test'][0, 0] = 17
    savemat(path, dict(peta=peta))
    with pytest.raises(ValueError) as excinfo:
        PETA(data_root=root, ann_file='PETA.mat', split='test')
    one_line(excinfo, path, 'to 16', '16 images')

    savemat(path, dict(peta=peta[0, 0]['data']))
    with pytest.raises(ValueError) as excinfo:
        PETA(data_root=root, ann_file='PETA.mat')
    one_line(excinfo, path, 'not laid out as released')
