"""The DPAL student in the pedestrian attribute chains: mmpretrain's
ImageClassifier + MultiLabelLinearClsHead on mmdpal's PA-100K and PETA-zs
(configs/downstream/attribute/; PETA-zs is the PA-100K recipe with
mmdpal's PETA reader).

Chain: a student checkpoint -> tools/train.py (two iterations) ->
tools/test.py with mmdpal's PedestrianAttributeMetric, on a generated
folder in the released format (PA-100K's annotation.mat written with
scipy; Jia et al.'s PETA-zs pickle, read without easydict); the real
configs build and load the student strictly.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdpal_testing import (PETA_ZS_SPLIT, REPO, TINY_CONFIGS,
                            build_with_student, evaluate_checkpoint,
                            outputs_per_image, train_from_student,
                            write_pa100k, write_peta)
from mmengine.config import Config

from mmdpal.datasets import PA100K, PETA
from mmdpal.datasets.attributes import PETA_EVAL_ATTRIBUTES
from mmdpal.evaluation import pedestrian_attribute_scores

CONFIGS = {
    name:
    osp.join(REPO, 'configs', 'downstream', 'attribute',
             f'mlc_dpal-vit-ti_1xb64-25e_{name}-256x128.py')
    for name in ('pa100k', 'peta-zs')
}
TINY = {
    'pa100k': osp.join(TINY_CONFIGS, 'tiny_pa100k.py'),
    'peta-zs': osp.join(TINY_CONFIGS, 'tiny_peta_zs.py'),
}
NUM_ATTRIBUTES = {'pa100k': 26, 'peta-zs': 35}


@pytest.mark.parametrize('name', CONFIGS)
def test_config_loads_the_student_strictly(vit_ti_student, name):
    """Every student tensor, the class token included, goes into the
    256x128 ViT; one sigmoid output per attribute on its class token; the
    Table 7 recipe (lr 1e-4, 25 epochs) and the PAR metric."""
    path, student = vit_ti_student
    cfg = Config.fromfile(CONFIGS[name])
    assert cfg.model.init_cfg.type == 'mmdpal.StrictPretrained'
    model = build_with_student(CONFIGS[name], 'mmpretrain', path)
    backbone = model.backbone.state_dict()
    assert set(backbone) == set(student)
    for key in student:
        assert torch.equal(backbone[key], student[key]), key
    model.eval()
    with torch.no_grad():
        scores = model.predict(torch.rand(2, 3, 256, 128))
    assert scores[0].pred_score.shape == (NUM_ATTRIBUTES[name], )
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    assert cfg.train_cfg.max_epochs == 25
    assert cfg.test_evaluator.type == 'mmdpal.PedestrianAttributeMetric'


def build_datasets(name, root):
    """The config's train and test datasets on the folder ``root``."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS
    cfg = Config.fromfile(CONFIGS[name])
    init_default_scope('mmpretrain')
    return [
        DATASETS.build(
            dict(getattr(cfg, f'{loader}_dataloader').dataset, data_root=root))
        for loader in ('train', 'test')
    ]


def test_config_pipelines_on_a_pa100k_folder(tmp_path):
    """The real pipelines give 256x128 images and 26-way multi-label
    targets."""
    written = write_pa100k(str(tmp_path))
    for dataset, split in zip(
            build_datasets('pa100k', str(tmp_path)), ('train', 'test')):
        sample = dataset[0]
        assert sample['inputs'].shape == (3, 256, 128)
        assert sample['data_samples'].gt_label.tolist() == np.flatnonzero(
            written[split][1][0]).tolist()
    assert len(dataset.metainfo['classes']) == 26


def test_config_pipelines_on_a_peta_folder(tmp_path):
    """PETA-zs: trainval to train, test to test, 256x128 images and 35-way
    targets."""
    write_peta(str(tmp_path))
    train, test = build_datasets('peta-zs', str(tmp_path))
    assert (len(train), len(test)) == (8, 8)
    for dataset in (train, test):
        assert dataset[0]['inputs'].shape == (3, 256, 128)
    # the first test image, 00003.png: accessoryHat and personalMale
    assert test[0]['data_samples'].gt_label.tolist() == [0, 34]
    assert len(test.metainfo['classes']) == 35


def pa100k_test_set(root):
    """The test images and their labels, as written."""
    written = write_pa100k(root)
    return PA100K(data_root=root, split='test'), written['test'][1]


def peta_zs_test_set(root):
    """The test images and their 35 evaluated labels (2 read as 0)."""
    labels = write_peta(root)['labels'][PETA_ZS_SPLIT['test']]
    labels = labels[:, PETA_EVAL_ATTRIBUTES]
    assert np.any(labels == 2)  # so that the chain checks the 2 -> 0 reading
    return PETA(data_root=root, split='test'), labels == 1


TEST_SETS = {'pa100k': pa100k_test_set, 'peta-zs': peta_zs_test_set}


@pytest.mark.slow
@pytest.mark.parametrize('name', CONFIGS)
def test_attribute_chain_train_then_test(tmp_path, tiny_student, name):
    root = str(tmp_path / name)
    test_set, labels = TEST_SETS[name](root)
    options = [
        f'{split}_dataloader.dataset.data_root={root}'
        for split in ('train', 'val', 'test')
    ]
    work = str(tmp_path / 'work')
    checkpoint = train_from_student(
        TINY[name], work, options, tiny_student, cls_token_used=True)

    metrics = evaluate_checkpoint(TINY[name], checkpoint, work, options)
    assert set(metrics) == {
        'par/mA', 'par/accuracy', 'par/precision', 'par/recall', 'par/F1'
    }
    assert all(0.0 <= v <= 1.0 for v in metrics.values()), metrics
    # the reported numbers are those of the tuned model's predictions
    scores = outputs_per_image(
        TINY[name], 'mmpretrain', tiny_student[0], checkpoint, test_set,
        lambda model, inputs: model.predict(inputs)[0].pred_score)
    expected = pedestrian_attribute_scores(
        torch.stack(scores).numpy() >= 0.5, labels)
    assert metrics == pytest.approx({
        f'par/{k}': v
        for k, v in expected.items()
    })
