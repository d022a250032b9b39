"""The DPAL student in mmpose: configs/downstream/mmpose/, our protocol and
the authors' (``*_official.py``).

Chain: a student checkpoint (DPAL checkpoint -> extract_student.py) ->
tools/train.py (two iterations) -> tools/test.py with mmpose's CocoMetric,
on generated COCO-format data and on real COCO images; the same for each
official config (COCO also with 2 processes) and for CrowdPose (both
protocols, generated CrowdPose-format data, ``keypoints_crowd``
evaluation) and COCO-WholeBody (generated 133-point data); the metric fed
the ground truth; the bad inputs.
"""
import glob
import json
import math
import os
import os.path as osp
import socket
import subprocess

import numpy as np
import pytest
import torch
from mmdpal_testing import (REPO, SHARED, TINY_CONFIGS, build_with_student,
                            evaluate_checkpoint, mmpose_data_options,
                            train_from_student, train_log, train_losses,
                            write_coco_keypoints)
from mmengine.config import Config
from mmengine.registry import init_default_scope

ALL_CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'downstream', 'mmpose', '*.py')))
CONFIGS = [c for c in ALL_CONFIGS if not c.endswith('_official.py')]
OFFICIAL_CONFIGS = [c for c in ALL_CONFIGS if c.endswith('_official.py')]
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


@pytest.mark.parametrize('config', OFFICIAL_CONFIGS, ids=osp.basename)
def test_official_config_loads_the_student_strictly(config, student_for):
    """Each official config loads every student tensor, the class token too
    where their ViT keeps it (not COCO-WholeBody), with 12 heads in the last
    block, and predicts heatmaps at stride 4."""
    path, student = student_for(config)
    cfg, model = build_model(config, path)
    vit = model.backbone
    backbone = vit.state_dict()
    for key in ('patch_embed.projection.weight', 'layers.11.attn.qkv.weight',
                'ln1.weight'):
        assert torch.equal(backbone[key], student[key]), key
    assert [layer.attn.num_heads for layer in vit.layers] == [6] * 11 + [12]
    assert cfg.model.backbone.drop_path_rate == 0
    with_cls = 'wholebody' not in config
    assert ('cls_token' in backbone) == with_cls
    if with_cls:
        assert torch.equal(backbone['cls_token'], student['cls_token'])
        assert cfg.model.backbone.pos_embed_resize == 'sequence_1d'
    h, w = cfg.codec.input_size[1], cfg.codec.input_size[0]
    model.eval()
    with torch.no_grad():
        heatmaps = model(torch.rand(1, 3, h, w), None, mode='tensor')
    assert heatmaps.shape == (1, cfg.model.head.out_channels, h // 4, w // 4)
    for split in ('val', 'test'):  # ground-truth boxes
        assert cfg[f'{split}_dataloader'].dataset.bbox_file is None


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


def check_chain(tmp_path,
                student,
                data_options,
                num_instances,
                val_ann,
                config=TINY,
                prefix='coco',
                num_keypoints=17,
                **train_checks):
    """train.py (2 iterations) -> test.py; returns the test metrics."""
    work = str(tmp_path / 'work')
    train_checks.setdefault('pos_embed_resize',
                            '1 extra + 4x2 -> 0 extra + 4x3')
    train_from_student(config, work, data_options, student, **train_checks)

    out = str(tmp_path / 'preds')
    metrics = evaluate_checkpoint(config, osp.join(work, 'epoch_1.pth'), work,
                                  data_options,
                                  [f'test_evaluator.outfile_prefix={out}'])
    for key in ('AP', 'AP .5', 'AR'):
        key = f'{prefix}/{key}'
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics)
    # one prediction of the body's keypoints per annotated person
    with open(f'{out}.keypoints.json') as f:
        preds = json.load(f)
    assert len(preds) == num_instances
    assert sorted({p['image_id']
                   for p in preds}) == sorted(
                       {a['image_id']
                        for a in keypoint_annotations(val_ann)})
    assert all(len(p['keypoints']) == num_keypoints * 3 for p in preds)
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


# (tiny config, fixture layout, metric prefix, body keypoints, what train.py
# logs of the position embedding at loading, class token loaded)
CHAINS = {
    'coco_official':
    ('tiny_mmpose_coco_official.py', 'coco', 'coco', 17, None, True),
    'humanart_official': ('tiny_mmpose_humanart_official.py', 'coco', 'coco',
                          17, '1 extra + 4x2 -> 1 extra + 3x3', True),
    'wholebody_official':
    ('tiny_mmpose_wholebody_official.py', 'wholebody', 'coco-wholebody', 17,
     '1 extra + 4x2 -> 0 extra + 4x3', False),
    'crowdpose': ('tiny_mmpose_crowdpose.py', 'crowdpose', 'crowdpose', 14,
                  '1 extra + 4x2 -> 0 extra + 4x3', False),
    'crowdpose_official':
    ('tiny_mmpose_crowdpose_official.py', 'crowdpose', 'crowdpose', 14,
     '1 extra + 4x2 -> 1 extra + 3x3', True),
}


def chain_fixture(tmp_path, layout):
    train = write_coco_keypoints(str(tmp_path), 'train', seed=0, layout=layout)
    val = write_coco_keypoints(str(tmp_path), 'val', seed=1, layout=layout)
    options = mmpose_data_options(
        str(tmp_path), train['ann_file'], val['ann_file'], train['img_prefix'],
        val['img_prefix'])
    return val, options


@pytest.mark.slow
@pytest.mark.parametrize('chain', list(CHAINS))
def test_official_and_crowdpose_chains_train_then_test(chain, tmp_path,
                                                       student_for):
    """Each official config (and our CrowdPose one), shrunk: the student
    loaded strictly (with the class token where their ViT keeps it, the
    position grid as their ViT stores it), two training iterations,
    tools/test.py with the task's metric (CrowdPose: ``keypoints_crowd``,
    AP(E/M/H) from the images' ``crowdIndex``)."""
    config, layout, prefix, num_kpts, resize, cls_used = CHAINS[chain]
    val, options = chain_fixture(tmp_path, layout)
    metrics = check_chain(
        tmp_path,
        student_for(config, tiny=True),
        options,
        val['num_instances'],
        val['ann_file'],
        config=osp.join(TINY_CONFIGS, config),
        prefix=prefix,
        num_keypoints=num_kpts,
        pos_embed_resize=resize,
        cls_token_used=cls_used)
    if layout == 'crowdpose':
        assert {'crowdpose/AP(E)', 'crowdpose/AP(M)',
                'crowdpose/AP(H)'} <= set(metrics)


@pytest.mark.slow
def test_coco_official_chain_with_two_processes(tmp_path,
                                                official_tiny_student):
    """tools/dist_train.sh with 2 processes (torchrun, gloo on the CPU) on
    the shrunk official COCO config: every parameter, the class token
    included, takes part in the DDP step; then tools/test.py."""
    config = osp.join(TINY_CONFIGS, 'tiny_mmpose_coco_official.py')
    train = write_coco_keypoints(
        str(tmp_path), 'train', num_images=2, seed=0)  # 4 persons: 2 a rank
    val = write_coco_keypoints(str(tmp_path), 'val', seed=1)
    options = mmpose_data_options(
        str(tmp_path), train['ann_file'], val['ann_file'], train['img_prefix'],
        val['img_prefix'])
    work = str(tmp_path / 'work')
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = str(s.getsockname()[1])
    result = subprocess.run([
        'bash', 'tools/dist_train.sh', config, '2', '--work-dir', work,
        '--cfg-options', *options,
        f'model.init_cfg.checkpoint={official_tiny_student[0]}',
        'train_cfg.max_epochs=2', 'env_cfg.dist_cfg.timeout=60'
    ],
                            cwd=REPO,
                            env=dict(
                                os.environ,
                                OMP_NUM_THREADS='1',
                                MKL_NUM_THREADS='1',
                                PORT=port),
                            capture_output=True,
                            text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    assert 'Distributed training: True' in train_log(work)
    losses = train_losses(work)
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    tuned = torch.load(
        osp.join(work, 'epoch_2.pth'), map_location='cpu',
        weights_only=True)['state_dict']
    assert not torch.equal(tuned['backbone.cls_token'],
                           official_tiny_student[1]['cls_token'])
    metrics = evaluate_checkpoint(config, osp.join(work, 'epoch_2.pth'), work,
                                  options)
    assert 0.0 <= metrics['coco/AP'] <= 1.0
