"""The DPAL student in mmpose: configs/downstream/mmpose/.

Chain: a student checkpoint (DPAL checkpoint -> extract_student.py) ->
tools/train.py (two iterations) -> tools/test.py with mmpose's CocoMetric,
on generated COCO-format data and on real COCO images; the metric fed the
ground truth; the bad inputs.
"""
import glob
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmdpal_testing import (REPO, SHARED, TINY_CONFIGS, build_with_student,
                            evaluate_checkpoint, mmpose_data_options,
                            train_from_student, write_coco_keypoints)
from mmengine.config import Config
from mmengine.registry import init_default_scope

CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'downstream', 'mmpose', '*.py')))
COCO_CONFIG = osp.join(REPO, 'configs', 'downstream', 'mmpose',
                       'td-hm_dpal-vit-ti_8xb64-210e_coco-256x192.py')
TINY = osp.join(TINY_CONFIGS, 'tiny_mmpose_coco.py')
REAL_COCO = osp.join(SHARED, 'testdata', 'mmpose-tests', 'coco')


def build_model(config, checkpoint):
    """Build a downstream config's model in mmpose's scope, with the student
    at ``checkpoint``, and run its init_weights."""
    return Config.fromfile(config), build_with_student(config, 'mmpose',
                                                       checkpoint)


def coco_evaluator(ann_file):
    """The tiny config's test metric (mmpose CocoMetric), built through the
    registry as the runner builds it, with COCO's keypoint meta."""
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    from mmpose.registry import METRICS

    import mmdpal  # noqa: F401
    cfg = Config.fromfile(TINY)
    cfg.test_evaluator.ann_file = ann_file
    init_default_scope('mmpose')
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = parse_pose_metainfo(
        dict(from_file='configs/_base_/datasets/coco.py'))
    return metric


def evaluate_as_predictions(metric, annotations):
    """Feed ``annotations`` (COCO dicts) to ``metric`` as predictions."""
    for ann in annotations:
        kpts = np.array(ann['keypoints'], dtype=np.float32).reshape(1, -1, 3)
        metric.process([], [
            dict(
                id=ann['id'],
                img_id=ann['image_id'],
                category_id=1,
                pred_instances=dict(
                    keypoints=kpts[..., :2],
                    keypoint_scores=np.ones(kpts.shape[:2], np.float32)),
                gt_instances=dict())
        ])
    return metric.evaluate(len(annotations))


def keypoint_annotations(ann_file):
    with open(ann_file) as f:
        anns = json.load(f)['annotations']
    return [a for a in anns if a['num_keypoints'] > 0 and not a['iscrowd']]


@pytest.mark.parametrize('config', CONFIGS, ids=osp.basename)
def test_config_loads_the_student_strictly(config, vit_ti_student):
    """Each mmpose config (COCO, WholeBody, Human-Art, AP-10K) inherits its
    mmpose base, puts the 192-dim student in, loads every student tensor and
    predicts heatmaps at stride 4."""
    path, student = vit_ti_student
    cfg, model = build_model(config, path)
    backbone = model.backbone.state_dict()
    for key in ('patch_embed.projection.weight', 'layers.0.attn.qkv.weight',
                'layers.11.ffn.layers.1.weight', 'ln1.weight'):
        assert torch.equal(backbone[key], student[key]), key
    # 16x8 (+ class slot) resized to the fine-tuning grid
    h, w = cfg.codec.input_size[1], cfg.codec.input_size[0]
    grid = ((h + 4 - 16) // 16 + 1, (w + 4 - 16) // 16 + 1)
    assert model.backbone.patch_resolution == grid
    assert backbone['pos_embed'].shape == (1, grid[0] * grid[1], 192)
    assert 'cls_token' not in backbone
    assert model.head.in_channels == 192
    model.eval()
    with torch.no_grad():
        heatmaps = model(torch.rand(1, 3, h, w), None, mode='tensor')
    assert heatmaps.shape == (1, cfg.model.head.out_channels, h // 4, w // 4)


def test_missing_student_checkpoint_names_the_path(tmp_path):
    missing = str(tmp_path / 'no_such_student.pth')
    with pytest.raises(FileNotFoundError, match='no_such_student.pth'):
        build_model(COCO_CONFIG, missing)


def test_student_of_another_architecture_lists_the_mismatches(vit_s_student):
    """A 384-dim ViT-S student in the 192-dim config: one error listing every
    mis-shaped key with both shapes."""
    with pytest.raises(RuntimeError) as error:
        build_model(COCO_CONFIG, vit_s_student[0])
    message = str(error.value)
    assert 'does not fit model.backbone' in message
    assert ('layers.0.attn.qkv.weight: checkpoint (1152, 384) vs model '
            '(576, 192)') in message
    assert 'pos_embed: checkpoint (1, 129, 384) vs model (1, 192, 192)' \
        in message
    # every block's tensors are listed, not only the first mismatch
    assert 'layers.11.ffn.layers.1.weight' in message
    assert '149 shape mismatch(es)' in message


def test_missing_annotation_file_names_the_path(tmp_path, tiny_student):
    from mmengine.runner import Runner
    cfg = Config.fromfile(TINY)
    cfg.merge_from_dict(
        dict(
            work_dir=str(tmp_path / 'work'),
            model=dict(init_cfg=dict(checkpoint=tiny_student[0]))))
    missing = str(tmp_path / 'annotations' / 'person_keypoints_train.json')
    cfg.train_dataloader.dataset.data_root = str(tmp_path)
    cfg.train_dataloader.dataset.ann_file = missing
    with pytest.raises(AssertionError, match='person_keypoints_train.json'):
        Runner.from_cfg(cfg).train()


def test_coco_metric_gives_a_perfect_score_on_the_ground_truth(tmp_path):
    ann_file = write_coco_keypoints(str(tmp_path), 'val')['ann_file']
    anns = keypoint_annotations(ann_file)
    metrics = evaluate_as_predictions(coco_evaluator(ann_file), anns)
    assert metrics['coco/AP'] == pytest.approx(1.0)
    assert metrics['coco/AR'] == pytest.approx(1.0)

    # control: one person's keypoints moved by a tenth of the image
    anns[0]['keypoints'] = [
        v + 12 if i % 3 != 2 else v for i, v in enumerate(anns[0]['keypoints'])
    ]
    metrics = evaluate_as_predictions(coco_evaluator(ann_file), anns)
    assert metrics['coco/AP'] < 0.9


@pytest.mark.skipif(
    not osp.isdir(REAL_COCO),
    reason='../shared/testdata/mmpose-tests/coco is absent')
def test_coco_metric_on_real_annotations_ground_truth():
    ann_file = osp.join(REAL_COCO, 'test_coco.json')
    anns = keypoint_annotations(ann_file)
    assert len(anns) == 12
    metrics = evaluate_as_predictions(coco_evaluator(ann_file), anns)
    assert metrics['coco/AP'] == pytest.approx(1.0)


def check_chain(tmp_path, student, data_options, num_instances, val_ann):
    """train.py (2 iterations) -> test.py; returns the test metrics."""
    work = str(tmp_path / 'work')
    train_from_student(
        TINY,
        work,
        data_options,
        student,
        pos_embed_resize='1 extra + 4x2 -> 0 extra + 4x3')

    prefix = str(tmp_path / 'preds')
    metrics = evaluate_checkpoint(TINY, osp.join(work, 'epoch_1.pth'), work,
                                  data_options,
                                  [f'test_evaluator.outfile_prefix={prefix}'])
    for key in ('coco/AP', 'coco/AP .5', 'coco/AR'):
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics)
    # one prediction of 17 keypoints per annotated person
    with open(f'{prefix}.keypoints.json') as f:
        preds = json.load(f)
    assert len(preds) == num_instances
    assert sorted({p['image_id']
                   for p in preds}) == sorted(
                       {a['image_id']
                        for a in keypoint_annotations(val_ann)})
    assert all(len(p['keypoints']) == 17 * 3 for p in preds)
    return metrics


@pytest.mark.slow
def test_coco_chain_train_then_test(tmp_path, tiny_student):
    train = write_coco_keypoints(str(tmp_path), 'train', seed=0)
    val = write_coco_keypoints(str(tmp_path), 'val', seed=1)
    options = mmpose_data_options(
        str(tmp_path), train['ann_file'], val['ann_file'], train['img_prefix'],
        val['img_prefix'])
    check_chain(tmp_path, tiny_student, options, val['num_instances'],
                val['ann_file'])


@pytest.mark.slow
@pytest.mark.skipif(
    not osp.isdir(REAL_COCO),
    reason='../shared/testdata/mmpose-tests/coco is absent')
def test_coco_chain_on_real_coco_images(tmp_path, tiny_student):
    """Real COCO val2017 images and keypoints (read in place): train on 4
    persons (two iterations), test on all 12 annotated persons."""
    ann_file = osp.join(REAL_COCO, 'test_coco.json')
    options = mmpose_data_options(REAL_COCO, ann_file, ann_file,
                                  '') + ['train_dataloader.dataset.indices=4']
    check_chain(tmp_path, tiny_student, options, 12, ann_file)
