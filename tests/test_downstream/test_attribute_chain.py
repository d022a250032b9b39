"""The DPAL student in a pedestrian attribute chain: mmpretrain's
ImageClassifier + MultiLabelLinearClsHead on mmdpal's PA-100K
(configs/downstream/attribute/).

Chain: a student checkpoint -> tools/train.py (two iterations) ->
tools/test.py with mmdpal's PedestrianAttributeMetric, on a generated
PA-100K folder (annotation.mat written with scipy); the real config builds
and loads the student strictly.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdpal_testing import (REPO, TINY_CONFIGS, build_with_student,
                            evaluate_checkpoint, outputs_per_image,
                            train_from_student, write_pa100k)
from mmengine.config import Config

from mmdpal.evaluation import pedestrian_attribute_scores

CONFIG = osp.join(REPO, 'configs', 'downstream', 'attribute',
                  'mlc_dpal-vit-ti_1xb64-25e_pa100k-256x128.py')
TINY = osp.join(TINY_CONFIGS, 'tiny_pa100k.py')


def test_config_loads_the_student_strictly(vit_ti_student):
    """Every student tensor, the class token included, goes into the
    256x128 ViT; 26 sigmoid outputs on its class token."""
    path, student = vit_ti_student
    cfg = Config.fromfile(CONFIG)
    model = build_with_student(CONFIG, 'mmpretrain', path)
    backbone = model.backbone.state_dict()
    assert set(backbone) == set(student)
    for key in student:
        assert torch.equal(backbone[key], student[key]), key
    model.eval()
    with torch.no_grad():
        scores = model.predict(torch.rand(2, 3, 256, 128))
    assert scores[0].pred_score.shape == (26, )
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    assert cfg.train_cfg.max_epochs == 25


def test_config_pipelines_on_a_pa100k_folder(tmp_path):
    """The real pipelines give 256x128 images and 26-way multi-label
    targets."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS
    written = write_pa100k(str(tmp_path))
    cfg = Config.fromfile(CONFIG)
    init_default_scope('mmpretrain')
    for loader, split in (('train', 'train'), ('test', 'test')):
        dataset = DATASETS.build(
            dict(
                getattr(cfg, f'{loader}_dataloader').dataset,
                data_root=str(tmp_path)))
        sample = dataset[0]
        assert sample['inputs'].shape == (3, 256, 128)
        assert sample['data_samples'].gt_label.tolist() == np.flatnonzero(
            written[split][1][0]).tolist()
    assert len(dataset.metainfo['classes']) == 26


@pytest.mark.slow
def test_pa100k_chain_train_then_test(tmp_path, tiny_student):
    root = str(tmp_path / 'PA-100K')
    written = write_pa100k(root)
    options = [
        f'{split}_dataloader.dataset.data_root={root}'
        for split in ('train', 'val', 'test')
    ]
    work = str(tmp_path / 'work')
    train_from_student(TINY, work, options, tiny_student, cls_token_used=True)

    metrics = evaluate_checkpoint(TINY, osp.join(work, 'epoch_1.pth'), work,
                                  options)
    assert set(metrics) == {
        'par/mA', 'par/accuracy', 'par/precision', 'par/recall', 'par/F1'
    }
    assert all(0.0 <= v <= 1.0 for v in metrics.values()), metrics
    # the reported numbers are those of the tuned model's predictions
    scores = predict_scores(tiny_student[0], osp.join(work, 'epoch_1.pth'),
                            root)
    expected = pedestrian_attribute_scores(scores >= 0.5, written['test'][1])
    assert metrics == pytest.approx({
        f'par/{k}': v
        for k, v in expected.items()
    })


def predict_scores(student, checkpoint, root):
    """The checkpoint's attribute scores of the test split, image by
    image."""
    from mmdpal.datasets import PA100K
    scores = outputs_per_image(
        TINY, 'mmpretrain', student, checkpoint,
        PA100K(data_root=root, split='test'),
        lambda model, inputs: model.predict(inputs)[0].pred_score)
    return torch.stack(scores).numpy()
