"""The DPAL student in mmdet: CrowdDet on CrowdHuman
(configs/downstream/mmdet/) with mmdpal's SimpleFeaturePyramid, and the
authors' protocol (``*_official.py``: their ViT and pyramid, then FPN).

Chain: a student checkpoint -> tools/train.py (two iterations) ->
tools/test.py with mmdet's CrowdHumanMetric (AP, MR^-2, JI), on generated
CrowdHuman-format data; the metric fed the ground truth; cross-scope
building of mmdpal's parts; the bad inputs.
"""
import json
import os.path as osp

import pytest
import torch
from mmdpal_testing import (REPO, SHARED, TINY_CONFIGS, build_with_student,
                            evaluate_checkpoint, mmdet_data_options, run_tool,
                            train_from_student, write_crowdhuman)
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

CONFIG = osp.join(REPO, 'configs', 'downstream', 'mmdet',
                  'crowddet-rcnn_dpal-vit-ti_sfp_8xb2-30e_crowdhuman.py')
TINY = osp.join(TINY_CONFIGS, 'tiny_crowddet.py')
# the authors' protocol (configs/downstream/mmdet/*_official.py), shrunk
TINY_OFFICIAL = osp.join(TINY_CONFIGS, 'tiny_crowddet_official.py')
REAL_ODGT = osp.join(SHARED, 'testdata', 'crowdhuman', 'annotation_train.odgt')


def test_mmdpal_parts_build_from_the_mmdet_scope():
    """``type='mmdpal.X'`` resolves from mmdet's registries (mmdpal's are
    grandchildren of mmengine's root, under mmpretrain's)."""
    from mmdet.registry import MODELS, WEIGHT_INITIALIZERS

    import mmdpal  # noqa: F401
    from mmdpal.models import SimpleFeaturePyramid, StrictPretrained
    with DefaultScope.overwrite_default_scope('mmdet'):
        neck = MODELS.build(
            dict(
                type='mmdpal.SimpleFeaturePyramid',
                in_channels=32,
                out_channels=16))
        init = WEIGHT_INITIALIZERS.build(
            dict(type='mmdpal.StrictPretrained', checkpoint='x.pth'))
    assert type(neck) is SimpleFeaturePyramid
    assert type(init) is StrictPretrained


def test_simple_feature_pyramid_strides():
    """One stride-16 map -> strides 4, 8, 16, 32 and a max-pooled 64."""
    from mmdpal.models import SimpleFeaturePyramid
    neck = SimpleFeaturePyramid(in_channels=32, out_channels=16)
    neck.init_weights()
    x = torch.rand(2, 32, 8, 12)  # a 128x192 image at stride 16
    outs = neck((x, ))
    assert [tuple(o.shape) for o in outs] == [(2, 16, 32, 48), (2, 16, 16, 24),
                                              (2, 16, 8, 12), (2, 16, 4, 6),
                                              (2, 16, 2, 3)]
    # the stride-64 level is the stride-32 one sub-sampled
    assert torch.equal(outs[4], outs[3][:, :, ::2, ::2])
    assert len(SimpleFeaturePyramid(32, 16, num_outs=4)((x, ))) == 4
    with pytest.raises(ValueError, match='scale_factor 3.0'):
        SimpleFeaturePyramid(32, 16, scale_factors=(3.0, ))


def test_config_loads_the_student_strictly(vit_ti_student):
    """The CrowdDet config builds in mmdet's scope, loads every student
    tensor into the 192-dim ViT and feeds five levels to the RPN."""
    path, student = vit_ti_student
    cfg = Config.fromfile(CONFIG)
    model = build_with_student(CONFIG, 'mmdet', path)
    backbone = model.backbone.state_dict()
    for key in ('patch_embed.projection.weight', 'layers.5.attn.proj.weight',
                'ln1.bias'):
        assert torch.equal(backbone[key], student[key]), key
    assert backbone['pos_embed'].shape == (1, 50 * 88, 192)
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.rand(1, 3, 128, 192))
    assert [f.shape[-2:] for f in feats] == [(32, 48), (16, 24), (8, 12),
                                             (4, 6), (2, 3)]
    assert all(f.shape[1] == 256 for f in feats)
    assert cfg.model.rpn_head.anchor_generator.strides == [4, 8, 16, 32, 64]
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.optimizer.lr == 2e-4
    assert 'momentum' not in cfg.optim_wrapper.optimizer


def crowdhuman_evaluator(ann_file):
    """The tiny config's test metric (mmdet CrowdHumanMetric), built through
    the registry as the runner builds it."""
    from mmdet.registry import METRICS

    import mmdpal  # noqa: F401
    cfg = Config.fromfile(TINY)
    cfg.test_evaluator.ann_file = ann_file
    init_default_scope('mmdet')
    return METRICS.build(cfg.test_evaluator)


def evaluate_as_predictions(metric, records, image_shape, drop=0):
    """Feed the full boxes of each record's non-ignored persons (minus the
    last ``drop`` of the first record) to ``metric`` as predictions."""
    for i, record in enumerate(records):
        boxes = [
            b['fbox'] for b in record['gtboxes'] if b['tag'] == 'person'
            and not b.get('extra', {}).get('ignore', 0)
        ]
        if i == 0 and drop:
            boxes = boxes[:-drop]
        xyxy = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in boxes],
                            dtype=torch.float32)
        metric.process([], [
            dict(
                img_id=record['ID'],
                ori_shape=image_shape,
                pred_instances=dict(
                    bboxes=xyxy, scores=torch.ones(len(boxes))))
        ])
    return metric.evaluate(len(records))


def perfect_ap(records):
    """The AP of perfect detections under CrowdHumanMetric: CrowdDet's AP
    integrates precision over recall from the first detection's recall
    (1 / N), not from 0, so it is 1 - 1 / N for N persons."""
    num = sum(b['tag'] == 'person' and not b.get('extra', {}).get('ignore', 0)
              for r in records for b in r['gtboxes'])
    return 1 - 1 / num


def test_crowdhuman_metric_gives_a_perfect_score_on_the_ground_truth(tmp_path):
    ann_file, records = write_crowdhuman(str(tmp_path), 'val', seed=1)
    metrics = evaluate_as_predictions(
        crowdhuman_evaluator(ann_file), records, (128, 192))
    assert metrics['crowd_human/mAP'] == pytest.approx(
        perfect_ap(records), abs=1e-4)
    assert metrics['crowd_human/mMR'] == pytest.approx(0.0)
    assert metrics['crowd_human/JI'] == pytest.approx(1.0)

    # control: one person missed
    metrics = evaluate_as_predictions(
        crowdhuman_evaluator(ann_file), records, (128, 192), drop=1)
    assert metrics['crowd_human/mAP'] < perfect_ap(records) - 0.1
    assert metrics['crowd_human/mMR'] > 0.1
    assert metrics['crowd_human/JI'] < 0.95


@pytest.mark.skipif(
    not osp.isfile(REAL_ODGT),
    reason='../shared/testdata/crowdhuman is absent')
def test_crowdhuman_metric_on_a_real_annotation():
    """The real CrowdHuman line (6 persons, 1 ignored region) as both ground
    truth and predictions; the image is not available, so its shape is
    taken large enough that no box is clipped."""
    with open(REAL_ODGT) as f:
        records = [json.loads(line) for line in f if line.strip()]
    metrics = evaluate_as_predictions(
        crowdhuman_evaluator(REAL_ODGT), records, (2100, 1800))
    assert perfect_ap(records) == pytest.approx(5 / 6)
    assert metrics['crowd_human/mAP'] == pytest.approx(
        perfect_ap(records), abs=1e-4)
    assert metrics['crowd_human/mMR'] == pytest.approx(0.0)
    assert metrics['crowd_human/JI'] == pytest.approx(1.0)


def test_missing_annotation_file_names_the_path(tmp_path, tiny_student):
    from mmengine.runner import Runner
    cfg = Config.fromfile(TINY)
    cfg.merge_from_dict(
        dict(
            work_dir=str(tmp_path / 'work'),
            model=dict(init_cfg=dict(checkpoint=tiny_student[0]))))
    cfg.train_dataloader.dataset.data_root = str(tmp_path)
    cfg.train_dataloader.dataset.ann_file = str(tmp_path /
                                                'annotation_train.odgt')
    with pytest.raises(FileNotFoundError, match='annotation_train.odgt'):
        Runner.from_cfg(cfg).train()


@pytest.mark.slow
def test_student_of_another_architecture_fails_train_py(
        tmp_path, vit_ti_student):
    """tools/train.py with the 192-dim student in the (32-dim) tiny config:
    it stops before training with the mismatched keys and shapes."""
    train, _ = write_crowdhuman(str(tmp_path), 'train', num_images=4)
    val, _ = write_crowdhuman(str(tmp_path), 'val', seed=1)
    result = run_tool([
        'tools/train.py', TINY, '--work-dir',
        str(tmp_path / 'work'), '--cfg-options',
        *mmdet_data_options(str(tmp_path), train, val),
        f'model.init_cfg.checkpoint={vit_ti_student[0]}'
    ])
    assert result.returncode != 0
    assert 'does not fit model.backbone' in result.stderr
    assert ('layers.0.attn.qkv.weight: checkpoint (576, 192) vs model '
            '(96, 32)') in result.stderr
    assert 'missing in the checkpoint' not in result.stderr
    assert 'unexpected (not in the model' in result.stderr  # layers 4-11
    assert not osp.exists(str(tmp_path / 'work' / 'epoch_1.pth'))


@pytest.mark.slow
@pytest.mark.parametrize(
    'config', [TINY, TINY_OFFICIAL], ids=['ours', 'official'])
def test_crowdhuman_chain_train_then_test(config, tmp_path, student_for):
    """Our protocol and the authors' (class token kept and loaded, their
    pyramid + FPN, AdamW wd 1e-4 without clipping)."""
    train, _ = write_crowdhuman(str(tmp_path), 'train', num_images=4)
    val, val_records = write_crowdhuman(str(tmp_path), 'val', seed=1)
    data_options = mmdet_data_options(str(tmp_path), train, val)
    work = str(tmp_path / 'work')
    train_from_student(
        config,
        work,
        data_options,
        student_for(config, tiny=True),
        cls_token_used=config == TINY_OFFICIAL)

    prefix = str(tmp_path / 'preds')
    metrics = evaluate_checkpoint(config, osp.join(work, 'epoch_1.pth'), work,
                                  data_options,
                                  [f'test_evaluator.outfile_prefix={prefix}'])
    for key in ('crowd_human/mAP', 'crowd_human/mMR', 'crowd_human/JI'):
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics)
    # the detections the metric scored: one record per val image, in order
    with open(f'{prefix}.json') as f:
        preds = json.load(f)
    assert [p['ID'] for p in preds] == [r['ID'] for r in val_records]
    assert all(0 < len(p['dtboxes']) <= 50 for p in preds)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_mmcv_nms_on_the_gpu():
    """CrowdDet's NMS runs mmcv's CUDA op (tools/install.sh builds it where
    nvcc, a CUDA torch and a GPU are present, or with MMDPAL_CUDA_OPS=1)."""
    ops = pytest.importorskip('mmcv.ops', reason='mmcv without ops')
    if ops.get_compiling_cuda_version() == 'not available':
        pytest.skip('mmcv was built with CPU ops only')
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.],
                          [20., 20., 30., 30.]]).cuda()
    scores = torch.tensor([0.9, 0.8, 0.7]).cuda()
    dets, keep = ops.nms(boxes, scores, 0.5)
    assert keep.device.type == 'cuda' and keep.tolist() == [0, 2]
