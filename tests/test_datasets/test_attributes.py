"""PA-100K read from its released annotation.mat (written here with scipy,
in MATLAB's cell/matrix layout): names, splits and the multi-label targets,
and one-line errors for a bad file."""
import os.path as osp

import numpy as np
import pytest
from mmdpal_testing import PA100K_ATTRIBUTES, write_pa100k
from mmengine.registry import init_default_scope
from scipy.io import loadmat, savemat

from mmdpal.datasets import PA100K


@pytest.fixture(scope='module')
def pa100k(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('pa100k'))
    return root, write_pa100k(root)


def test_pa100k_reads_annotation_mat(pa100k):
    root, written = pa100k
    dataset = PA100K(data_root=root, split='train')
    names, labels = written['train']
    assert len(dataset) == len(names) == 6
    assert dataset.metainfo['classes'] == tuple(PA100K_ATTRIBUTES)
    for i, (name, label) in enumerate(zip(names, labels)):
        info = dataset.get_data_info(i)
        assert info['img_path'] == osp.join(root, 'data', name)
        assert osp.isfile(info['img_path'])
        assert info['gt_label'].tolist() == np.flatnonzero(label).tolist()


def test_pa100k_splits(pa100k):
    root, written = pa100k
    both = PA100K(data_root=root, split=('train', 'val'))
    assert [
        osp.basename(both.get_data_info(i)['img_path'])
        for i in range(len(both))
    ] == written['train'][0] + written['val'][0]
    assert len(PA100K(data_root=root, split='test')) == 4
    with pytest.raises(ValueError, match='trainval'):
        PA100K(data_root=root, split='trainval')


def test_pa100k_pipeline_gives_multilabel_targets(pa100k):
    root, written = pa100k
    init_default_scope('mmdpal')
    dataset = PA100K(
        data_root=root,
        split='test',
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='PackInputs')])
    sample = dataset[1]
    assert sample['inputs'].shape == (3, 64, 32)
    assert sample['data_samples'].gt_label.tolist() == np.flatnonzero(
        written['test'][1][1]).tolist()


def one_line(excinfo):
    message = str(excinfo.value)
    assert '\n' not in message
    return message


def test_pa100k_label_shape_disagrees(tmp_path):
    write_pa100k(str(tmp_path))
    path = str(tmp_path / 'annotation.mat')
    ann = {k: v for k, v in loadmat(path).items() if not k.startswith('__')}
    ann['val_label'] = ann['val_label'][:, :20]
    savemat(path, ann)
    with pytest.raises(ValueError) as excinfo:
        PA100K(data_root=str(tmp_path), split='val')
    message = one_line(excinfo)
    assert path in message and '(2, 20)' in message
    assert 'annotation.mat with attributes' in message


def test_pa100k_missing_key_or_file(tmp_path):
    with pytest.raises(FileNotFoundError) as excinfo:
        PA100K(data_root=str(tmp_path))
    assert str(tmp_path / 'annotation.mat') in one_line(excinfo)
    write_pa100k(str(tmp_path))
    path = str(tmp_path / 'annotation.mat')
    ann = {k: v for k, v in loadmat(path).items() if not k.startswith('__')}
    del ann['test_images_name']
    savemat(path, ann)
    with pytest.raises(ValueError, match='test_images_name'):
        PA100K(data_root=str(tmp_path), split='test')
