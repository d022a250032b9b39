"""The DPAL student in mmseg: ViT + MultiLevelNeck + UperNet on LIP
(configs/downstream/mmseg/, configs/_base_/datasets/lip.py).

Chain: a student checkpoint -> tools/train.py (two iterations) ->
tools/test.py with mmseg's IoUMetric (mIoU, mAcc), on generated LIP-format
data (jpg + png label masks); the metric fed the ground truth; the bad
inputs.
"""
import glob
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmdpal_testing import (REPO, TINY_CONFIGS, build_with_student,
                            evaluate_checkpoint, mmseg_data_options,
                            official_tiny_config, run_tool, train_from_student,
                            train_log, write_lip)
from mmengine.config import Config
from mmengine.registry import init_default_scope

CONFIG = osp.join(REPO, 'configs', 'downstream', 'mmseg',
                  'dpal-vit-ti_mln_upernet_8xb2-150e_lip-576x384.py')
LIP_BASE = osp.join(REPO, 'configs', '_base_', 'datasets', 'lip.py')
TINY = osp.join(TINY_CONFIGS, 'tiny_lip.py')
NUM_CLASSES = 20
# the authors' protocol (HumanParsing, docs/downstream.md)
OFFICIAL = osp.join(REPO, 'configs', 'downstream', 'mmseg',
                    'dpal-vit-ti_ce2p_8xb12-150e_lip-576x384_official.py')


def tiny_official(folder):
    """tiny_lip.py with the official backbone outputs, CE2P head and losses,
    SCHP crops, optimiser, SCHP hook (one cycle at the end of the only epoch)
    and multi-scale + flip test, fitted to the 32-dim, 4-block ViT."""
    return official_tiny_config(
        TINY,
        OFFICIAL,
        osp.join(folder, 'tiny_lip_official.py'),
        copied=[
            'model.init_cfg.unused_keys', 'model.init_cfg.new_keys',
            'model.init_cfg.pos_embed_resize', 'model.backbone.type',
            'model.backbone.pos_embed_resize', 'model.backbone.tap_norm',
            'model.backbone.img_size', 'model.backbone.with_cls_token',
            'model.backbone.final_norm', 'model.neck', 'model.decode_head',
            'model.auxiliary_head', 'train_dataloader.dataset.pipeline',
            'val_dataloader.dataset.pipeline',
            'test_dataloader.dataset.pipeline', 'optim_wrapper',
            'custom_hooks', 'tta_model', 'tta_pipeline'
        ],
        fitted={
            'model.backbone.layer_cfgs': [{}] * 3 + [dict(num_heads=4)],
            'model.backbone.out_indices': (1, 2, 3),
            'model.decode_head.in_channels': 32,
            'model.decode_head.channels': 16,
            'model.decode_head.low_channels': 8,
            'model.decode_head.edge_channels': 8,
            'train_dataloader.dataset.pipeline.2.crop_size': (96, 64),
            'custom_hooks.0.start_epoch': 1,
            'custom_hooks.0.cycle_epochs': 1,
            'val_dataloader.dataset.pipeline.1.crop_size': (96, 64),
            'test_dataloader.dataset.pipeline.1.crop_size': (96, 64),
            'tta_pipeline.1.transforms.0.0.crop_size': (96, 64),
            'train_cfg.val_begin': 2,  # fast: no validation after training
        })


def test_lip_base_config_reads_the_lip_layout(tmp_path):
    """configs/_base_/datasets/lip.py builds mmseg's LIPDataset on the
    images/{split} + annotations/{split} layout, 20 classes, and its
    pipeline yields crops of at most 576x384 with their label map."""
    import mmseg.datasets  # noqa: F401
    from mmseg.registry import DATASETS
    masks = write_lip(str(tmp_path), 'training', num_images=3, size=(640, 420))
    cfg = Config.fromfile(LIP_BASE)
    cfg.train_dataloader.dataset.data_root = str(tmp_path)
    init_default_scope('mmseg')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(dataset) == 3
    assert len(dataset.metainfo['classes']) == NUM_CLASSES
    assert sorted(dataset.get_data_info(i)['seg_map_path']
                  for i in range(3)) == sorted(masks)
    assert cfg.crop_size == (576, 384)
    sample = dataset[0]
    h, w = sample['inputs'].shape[-2:]
    assert h <= 576 and w <= 384
    seg = sample['data_samples'].gt_sem_seg.data
    assert seg.shape[-2:] == (h, w)
    assert set(seg.unique().tolist()) <= set(range(NUM_CLASSES)) | {255}


@pytest.mark.parametrize(
    'config,loaded,grid,num_tokens,out_indices,last_heads',
    [(CONFIG, ('ln1.weight', 'cls_token'),
      (36, 24), 36 * 24, [2, 5, 8, 11], 6),
     (OFFICIAL, ('cls_token', 'layers.11.attn.qkv.weight'),
      (14, 14), 1 + 14 * 14, [3, 7, 11], 12)])
def test_config_loads_the_student_strictly(student_for, config, loaded, grid,
                                           num_tokens, out_indices,
                                           last_heads):
    """The LIP configs build in mmseg's scope, load the student into the
    192-dim ViT (ours: blocks 3, 6, 9, 12 out, its final norm, positions
    stored at 36x24; the authors': blocks 4, 8, 12 out, the class token in
    the sequence, 12 heads in the last block, positions stored at 14x14 and
    resized in every forward) and predict 20 classes at stride 4."""
    path, student = student_for(config)
    cfg = Config.fromfile(config)
    model = build_with_student(config, 'mmseg', path)
    backbone = model.backbone.state_dict()
    for key in ('patch_embed.projection.weight', 'layers.8.ln2.weight',
                *loaded[:1 if config == CONFIG else 2]):
        assert torch.equal(backbone[key], student[key]), key
    assert model.backbone.patch_resolution == grid
    assert backbone['pos_embed'].shape == (1, num_tokens, 192)
    if config == OFFICIAL:  # theirs: 16x8 -> 196 as one sequence, bilinear
        pos = student['pos_embed']
        patches = torch.nn.functional.interpolate(
            pos[:, 1:].unsqueeze(0), size=(196, 192), mode='bilinear')[0]
        assert torch.allclose(backbone['pos_embed'],
                              torch.cat([pos[:, :1], patches], 1))
    assert list(model.backbone.out_indices) == out_indices
    assert model.backbone.layers[-1].attn.num_heads == last_heads
    model.eval()
    with torch.no_grad():
        logits = model(torch.rand(1, 3, 576, 384), None, mode='tensor')
    if config == OFFICIAL:  # CE2P: parsing, fused parsing, edge
        assert logits[2].shape == (1, 2, 144, 96)
        logits = logits[1]
    assert logits.shape == (1, NUM_CLASSES, 144, 96)
    assert cfg.optim_wrapper.optimizer.lr == 7e-4
    assert cfg.train_cfg.max_epochs == 150


def iou_evaluator():
    """The tiny config's test metric (mmseg IoUMetric), built through the
    registry as the runner builds it, with LIP's classes."""
    from mmseg.datasets import LIPDataset
    from mmseg.registry import METRICS

    import mmdpal  # noqa: F401
    cfg = Config.fromfile(TINY)
    init_default_scope('mmseg')
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = LIPDataset.METAINFO
    return metric


def evaluate(metric, pairs):
    for pred, label in pairs:
        metric.process([], [
            dict(
                pred_sem_seg=dict(data=torch.from_numpy(pred)[None]),
                gt_sem_seg=dict(data=torch.from_numpy(label)[None]))
        ])
    return metric.evaluate(len(pairs))


def test_iou_metric_gives_a_perfect_score_on_the_ground_truth(tmp_path):
    masks = write_lip(str(tmp_path), 'val', num_images=2, seed=1)
    labels = [
        cv2.imread(m, cv2.IMREAD_UNCHANGED).astype(np.int64) for m in masks
    ]
    metrics = evaluate(iou_evaluator(), [(lab, lab) for lab in labels])
    assert metrics == {'aAcc': 100.0, 'mIoU': 100.0, 'mAcc': 100.0}

    # control: the left and right arms swapped in the predictions
    swapped = []
    for lab in labels:
        pred = lab.copy()
        pred[lab == 14], pred[lab == 15] = 15, 14
        swapped.append((pred, lab))
    metrics = evaluate(iou_evaluator(), swapped)
    # 11 classes present (background + 10 parts), 2 of them all wrong
    assert metrics['mIoU'] == pytest.approx(100 * 9 / 11, abs=0.01)
    assert metrics['mAcc'] == pytest.approx(100 * 9 / 11, abs=0.01)


def test_missing_image_folder_names_the_path(tmp_path, tiny_student):
    from mmengine.runner import Runner
    cfg = Config.fromfile(TINY)
    cfg.merge_from_dict(
        dict(
            work_dir=str(tmp_path / 'work'),
            model=dict(init_cfg=dict(checkpoint=tiny_student[0]))))
    cfg.train_dataloader.dataset.data_root = str(tmp_path / 'LIP')
    with pytest.raises(
            FileNotFoundError, match=osp.join('LIP', 'images', 'training')):
        Runner.from_cfg(cfg).train()


@pytest.mark.slow
def test_missing_student_checkpoint_fails_train_py(tmp_path):
    """tools/train.py without the student: one error naming the path (and
    how to make it), before any training."""
    write_lip(str(tmp_path), 'train', num_images=2)
    write_lip(str(tmp_path), 'val', num_images=1, seed=1)
    missing = str(tmp_path / 'checkpoints' / 'dpal_vit-ti_student.pth')
    result = run_tool([
        'tools/train.py', TINY, '--work-dir',
        str(tmp_path / 'work'), '--cfg-options',
        *mmseg_data_options(str(tmp_path)),
        f'model.init_cfg.checkpoint={missing}'
    ])
    assert result.returncode != 0
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith('FileNotFoundError')
    assert missing in error and 'extract_student.py' in error
    assert not glob.glob(str(tmp_path / 'work' / '*.pth'))


@pytest.mark.slow
def test_tta_needs_a_tta_model(tmp_path):
    """tools/test.py --tta on a config without tta_model / tta_pipeline (our
    default LIP recipe): one error naming the config, before any model."""
    checkpoint = tmp_path / 'epoch_1.pth'
    checkpoint.write_bytes(b'')
    result = run_tool(['tools/test.py', TINY, str(checkpoint), '--tta'])
    assert result.returncode != 0
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith('ValueError') and TINY in error
    assert 'tta_model' in error and '_official.py' in error


def miou_of_pngs(pred_dir, label_paths):
    """mIoU / mAcc / aAcc (in %) of the predicted PNGs against the labels,
    computed here from the files."""
    inter = np.zeros(NUM_CLASSES)
    union = np.zeros(NUM_CLASSES)
    area_label = np.zeros(NUM_CLASSES)
    for path in label_paths:
        label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        pred = cv2.imread(
            osp.join(pred_dir, osp.basename(path)), cv2.IMREAD_UNCHANGED)
        assert pred.shape == label.shape
        for c in range(NUM_CLASSES):
            p, t = pred == c, label == c
            inter[c] += (p & t).sum()
            union[c] += (p | t).sum()
            area_label[c] += t.sum()
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = np.where(union > 0, inter / union, np.nan)
        acc = np.where(area_label > 0, inter / area_label, np.nan)
    return dict(
        mIoU=100 * np.nanmean(iou),
        mAcc=100 * np.nanmean(acc),
        aAcc=100 * inter.sum() / area_label.sum())


@pytest.mark.slow
@pytest.mark.parametrize('protocol', ['default', 'official'])
def test_lip_chain_train_then_test(tmp_path, student_for, protocol):
    """Ours; the authors' (CE2P head and losses, one SCHP cycle that leaves
    the aggregated weights in the checkpoint, multi-scale + flip test)."""
    official = protocol == 'official'
    tiny = tiny_official(str(tmp_path)) if official else TINY
    write_lip(str(tmp_path), 'train', num_images=4, seed=0)
    labels = write_lip(str(tmp_path), 'val', num_images=2, seed=1)
    data_options = mmseg_data_options(str(tmp_path))
    work = str(tmp_path / 'work')
    checkpoint = train_from_student(
        tiny,
        work,
        data_options,
        student_for(tiny, tiny=True),
        pos_embed_resize=('1 extra + 4x2 -> 1 extra + 14x14 (as one 1-D '
                          'sequence, bilinear)')
        if official else '1 extra + 4x2 -> 0 extra + 6x4',
        # the authors' ViT norms blocks 4, 8, 12 with its own LayerNorms
        unused=('ln1.weight', 'ln1.bias') if official else None)
    if official:
        assert 'SelfCorrectionHook: cycle 1 done at epoch 1' in train_log(work)
        saved = torch.load(checkpoint, map_location='cpu', weights_only=True)
        assert saved['schp']['cycle'] == 1
        for key, value in saved['schp']['state_dict'].items():
            assert torch.equal(saved['state_dict'][key], value), key

    pred_dir = str(tmp_path / 'preds')
    metrics = evaluate_checkpoint(
        tiny,
        checkpoint,
        work,
        data_options, [f'test_evaluator.output_dir={pred_dir}'],
        tta=official)
    # the reported numbers are those of the predictions it wrote
    expected = miou_of_pngs(pred_dir, labels)
    for key in ('mIoU', 'mAcc', 'aAcc'):
        assert metrics[key] == pytest.approx(expected[key], abs=0.01), key
