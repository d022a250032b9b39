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
import re

import numpy as np
import pytest
import torch
from mmdpal_testing import (PETA_ZS_SPLIT, REPO, TINY_CONFIGS,
                            build_with_student, evaluate_checkpoint,
                            official_tiny_config, outputs_per_image,
                            train_from_student, train_log, write_pa100k,
                            write_peta)
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
# the authors' protocol (attribute_recognition, docs/downstream.md)
# (their epochs: PA-100K 30, PETA-zs 22)
OFFICIAL = {
    name:
    osp.join(REPO, 'configs', 'downstream', 'attribute',
             f'mlc_dpal-vit-ti_1xb64-{epochs}e_{name}-256x128_official.py')
    for name, epochs in (('pa100k', 30), ('peta-zs', 22))
}


def tiny_official(name, folder):
    """The tiny chain config with the loss, hooks, optimiser, schedule and
    metrics of the official config; 4 heads in the last of the 4 blocks."""
    return official_tiny_config(
        TINY[name],
        OFFICIAL[name],
        osp.join(folder, f'tiny_{name}_official.py'),
        copied=[
            'model.head.loss', 'model.head.init_cfg', 'custom_hooks',
            'optim_wrapper', 'param_scheduler', 'val_evaluator',
            'test_evaluator'
        ],
        fitted={
            'model.backbone.layer_cfgs': [{}] * 3 + [dict(num_heads=4)],
            'train_dataloader.drop_last': True
        })


@pytest.mark.parametrize('name,protocol,epochs,last_heads',
                         [('pa100k', 'default', 25, 6),
                          ('peta-zs', 'default', 25, 6),
                          ('pa100k', 'official', 30, 12),
                          ('peta-zs', 'official', 22, 12)])
def test_config_loads_the_student_strictly(student_for, name, protocol, epochs,
                                           last_heads):
    """Every student tensor, the class token included, goes into the
    256x128 ViT; one sigmoid output per attribute on its class token; the
    Table 7 recipe (lr 1e-4, 25 epochs) or the authors' (30 / 22 epochs, 12
    heads in the last block) and the PAR metric."""
    config = CONFIGS[name] if protocol == 'default' else OFFICIAL[name]
    path, student = student_for(config)
    cfg = Config.fromfile(config)
    assert cfg.model.init_cfg.type == 'mmdpal.StrictPretrained'
    model = build_with_student(config, 'mmpretrain', path)
    backbone = model.backbone.state_dict()
    assert set(backbone) == set(student)
    for key in student:
        assert torch.equal(backbone[key], student[key]), key
    model.eval()
    with torch.no_grad():
        scores = model.predict(torch.rand(2, 3, 256, 128))
    assert scores[0].pred_score.shape == (NUM_ATTRIBUTES[name], )
    assert model.backbone.layers[-1].attn.num_heads == last_heads
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    assert cfg.train_cfg.max_epochs == epochs
    metrics = cfg.test_evaluator
    assert 'mmdpal.PedestrianAttributeMetric' in (
        [m.type
         for m in metrics] if isinstance(metrics, list) else [metrics.type])


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
    """The test images, their labels and the training labels, as written
    (training: train + val)."""
    written = write_pa100k(root)
    train = np.concatenate([written['train'][1], written['val'][1]])
    return PA100K(data_root=root, split='test'), written['test'][1], train


def peta_zs_test_set(root):
    """The test images, their 35 evaluated labels (2 read as 0) and those
    of the training split (trainval)."""
    labels = write_peta(root)['labels'][:, PETA_EVAL_ATTRIBUTES]
    test = labels[PETA_ZS_SPLIT['test']]
    assert np.any(test == 2)  # so that the chain checks the 2 -> 0 reading
    trainval = PETA_ZS_SPLIT['train'] + PETA_ZS_SPLIT['val']
    return (PETA(data_root=root,
                 split='test'), test == 1, labels[trainval] == 1)


TEST_SETS = {'pa100k': pa100k_test_set, 'peta-zs': peta_zs_test_set}


def weighted_bce_of_scores(scores, labels, ratio):
    """The authors' PAR loss (exp(1 - r) / exp(r) weighted BCE summed over
    the attributes) of each image's probabilities, averaged over images."""
    p = np.clip(scores.astype(np.float64), 1e-7, 1 - 1e-7)
    bce = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    weights = np.exp(np.where(labels, 1 - ratio, ratio))
    return float((weights * bce).sum(1).mean())


@pytest.mark.slow
@pytest.mark.parametrize('protocol', ['default', 'official'])
@pytest.mark.parametrize('name', CONFIGS)
def test_attribute_chain_train_then_test(tmp_path, student_for, name,
                                         protocol):
    tiny = TINY[name] if protocol == 'default' else tiny_official(
        name, str(tmp_path))
    student = student_for(tiny, tiny=True)
    root = str(tmp_path / name)
    test_set, labels, train_labels = TEST_SETS[name](root)
    options = [
        f'{split}_dataloader.dataset.data_root={root}'
        for split in ('train', 'val', 'test')
    ]
    work = str(tmp_path / 'work')
    checkpoint = train_from_student(
        tiny, work, options, student, cls_token_used=True)
    train_text = train_log(work)

    metrics = evaluate_checkpoint(tiny, checkpoint, work, options)
    par = {'par/mA', 'par/accuracy', 'par/precision', 'par/recall', 'par/F1'}
    assert set(metrics) == (
        par if protocol == 'default' else par | {'par/loss'})
    assert all(0.0 <= metrics[k] <= 1.0 for k in par), metrics
    # the reported numbers are those of the tuned model's predictions
    scores = outputs_per_image(
        tiny, 'mmpretrain', student[0], checkpoint, test_set,
        lambda model, inputs: model.predict(inputs)[0].pred_score)
    scores = torch.stack(scores).numpy()
    expected = {
        f'par/{k}': v
        for k, v in pedestrian_attribute_scores(scores >= 0.5, labels).items()
    }
    if protocol == 'official':
        # the loss was weighted by the training split's positive ratios
        logged = re.search(r'positive ratios of the training set \[(.*)\]',
                           train_text).group(1)
        ratio = train_labels.mean(0)
        assert np.array(logged.split(', '), float) == pytest.approx(ratio)
        expected['par/loss'] = weighted_bce_of_scores(scores, labels, ratio)
    assert metrics == pytest.approx(expected)
