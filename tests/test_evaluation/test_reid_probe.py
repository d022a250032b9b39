"""The ReID probe of a DPAL student (mmdpal.evaluation.reid_probe): as the
validation loop of a pretraining run, and as
tools/analysis_tools/reid_probe.py on a student checkpoint, on a generated
Market-1501 folder."""
import glob
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmdpal_testing import (REPO, TINY_CONFIG, run_tool, tiny_cfg_options,
                            write_market1501)
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmdpal.evaluation import reid_ranking_scores, run_reid_probe
from mmdpal.registry import MODELS

PROBE = osp.join(REPO, 'configs', 'downstream', 'reid',
                 'reid-probe_market1501-256x128.py')
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'reid_probe.py')


@pytest.fixture(scope='module')
def market(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('market'))
    write_market1501(root, num_test_ids=4)
    return root


class ClothesColour(torch.nn.Module):
    """An oracle 'backbone': the mean colour of the torso and of the legs
    (each identity of the fixture has its own), as a (B, 6) output."""

    def forward(self, x):
        H, W = x.shape[-2:]
        centre = slice(int(0.4 * W), int(0.6 * W))
        torso = x[..., int(0.25 * H):int(0.5 * H), centre].mean((2, 3))
        legs = x[..., int(0.6 * H):int(0.9 * H), centre].mean((2, 3))
        return (torch.cat([torso, legs], dim=1), )


def probe(backbone, root):
    init_default_scope('mmdpal')
    cfg = Config.fromfile(PROBE)
    cfg.val_dataloader.dataset.data_root = root
    cfg.val_dataloader.update(
        batch_size=4, num_workers=0, persistent_workers=False)
    preprocess = MODELS.build(
        dict(
            type='SelfSupDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            to_rgb=True))
    return run_reid_probe(backbone, preprocess,
                          Runner.build_dataloader(cfg.val_dataloader),
                          Evaluator(cfg.val_evaluator))


class Background(ClothesColour):
    """A control: the mean colour of the top corners (background only)."""

    def forward(self, x):
        H, W = x.shape[-2:]
        corners = torch.cat(
            [x[..., :H // 10, :W // 5], x[..., :H // 10, -W // 5:]], dim=-1)
        return (corners.mean((2, 3)), )


def test_probe_of_an_oracle_scores_one_and_a_control_lower(market):
    """Embeddings that know the identities (clothes colours) rank
    perfectly; embeddings of the background do not."""
    oracle = probe(ClothesColour(), market)
    assert oracle == pytest.approx({
        'reid/mAP': 1.0,
        'reid/R1': 1.0,
        'reid/R5': 1.0,
        'reid/R10': 1.0
    })
    control = probe(Background(), market)
    assert control['reid/mAP'] < 0.8 and control['reid/R1'] < 1.0


def test_probe_freezes_the_student_and_gives_its_mode_back(market):
    """The probe embeds in eval mode without gradients: a ViT with drop
    path gives the same numbers twice, and is training again after."""
    from mmpretrain.models import VisionTransformer
    torch.manual_seed(0)
    vit = VisionTransformer(
        arch=dict(
            embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
        img_size=(256, 128),
        patch_size=16,
        drop_path_rate=0.5,
        out_type='raw')
    vit.train()
    first = probe(vit, market)
    assert vit.training
    assert probe(vit, market) == first
    assert all(p.grad is None for p in vit.parameters())


def save_student(cfg_path, path, seed=0):
    """The tiny DPAL config's student with random weights, saved as
    extract_student.py writes it (``backbone.*``)."""
    init_default_scope('mmdpal')
    torch.manual_seed(seed)
    backbone = MODELS.build(Config.fromfile(cfg_path).model.backbone)
    torch.save(
        dict(state_dict={
            f'backbone.{k}': v
            for k, v in backbone.state_dict().items()
        }), path)
    return backbone


def class_token_scores(backbone, root, size=(256, 128)):
    """mAP / CMC of the backbone's class tokens, computed here from the
    images: resized to ``size`` (bicubic, pillow), ImageNet-normalised
    RGB."""
    from PIL import Image

    from mmdpal.datasets import Market1501
    dataset = Market1501(data_root=root, split='test')
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    backbone.eval()
    feats = []
    with torch.no_grad():
        for info in dataset:
            img = Image.open(info['img_path']).convert('RGB').resize(
                size[::-1], Image.BICUBIC)
            x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)
            x = ((x.float() - mean) / std)[None]
            feats.append(backbone(x)[-1][0, 0])
    feats = torch.nn.functional.normalize(torch.stack(feats), dim=1)
    is_query = np.array([d['is_query'] for d in dataset])
    pids = np.array([int(d['gt_label']) for d in dataset])
    cams = np.array([d['camera_id'] for d in dataset])
    q, g = np.flatnonzero(is_query), np.flatnonzero(~is_query)
    dist = (1 - feats[q] @ feats[g].t()).numpy()
    scores = reid_ranking_scores(dist, pids[q], pids[g], cams[q], cams[g], 10)
    return {
        'reid/mAP': scores['mAP'],
        **{
            f'reid/R{k}': scores['cmc'][k - 1]
            for k in (1, 5, 10)
        }
    }


def run_tool_main(args):
    """tools/analysis_tools/reid_probe.py, run in this process."""
    sys.path.insert(0, osp.dirname(TOOL))
    try:
        import reid_probe
        return reid_probe.main(args)
    finally:
        sys.path.remove(osp.dirname(TOOL))


def test_tool_on_a_student_checkpoint(tmp_path, market):
    ckpt = str(tmp_path / 'student.pth')
    backbone = save_student(TINY_CONFIG, ckpt)
    out = str(tmp_path / 'probe.json')
    metrics = run_tool_main([
        TINY_CONFIG, ckpt, '--data-root', market, '--num-workers', '0',
        '--batch-size', '4', '--out', out
    ])
    with open(out) as f:
        assert json.load(f) == pytest.approx(metrics)
    assert metrics == pytest.approx(class_token_scores(backbone, market))


def test_tool_on_the_initial_student_and_the_teacher(tiny_data, market):
    """--init probes the config's student as the runner initialises it,
    --teacher the teacher's class token; --size sets the input size."""
    sys.path.insert(0, osp.dirname(TOOL))
    try:
        from pattern_utils import build_model
    finally:
        sys.path.remove(osp.dirname(TOOL))
    teacher = osp.join(str(tiny_data), 'teacher.pth')
    options = ['--cfg-options', f'model.teacher.checkpoint={teacher}']
    common = [
        '--data-root', market, '--num-workers', '0', '--size', '64', '32'
    ]
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.model.teacher.checkpoint = teacher
    model = build_model(cfg)
    for flag, network in (('--init', model.backbone), ('--teacher',
                                                       model.teacher.vit)):
        metrics = run_tool_main([TINY_CONFIG, flag, *common, *options])
        assert metrics == pytest.approx(
            class_token_scores(network, market, size=(64, 32))), flag
    with pytest.raises(SystemExit):
        run_tool_main([TINY_CONFIG, *common])  # neither


def test_tool_refuses_a_checkpoint_of_another_student(tmp_path, market):
    """A student of another width: one error listing the mismatches."""
    ckpt = str(tmp_path / 'student.pth')
    torch.save(
        dict(state_dict={'backbone.cls_token': torch.zeros(1, 1, 64)}), ckpt)
    with pytest.raises(Exception, match='does not fit model.backbone'):
        run_tool_main([TINY_CONFIG, ckpt, '--data-root', market])


@pytest.mark.slow
def test_probe_as_the_validation_of_pretraining(tmp_path, tiny_data, market):
    """tools/train.py on the tiny DPAL config with the probe fragment as a
    base: the probe's numbers are logged after the epoch."""
    config = tmp_path / 'tiny_dpal_probe.py'
    config.write_text(f"""_base_ = [{TINY_CONFIG!r}, {PROBE!r}]
train_cfg = dict(max_epochs=1, val_interval=1)
val_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={market!r}))
""")
    work = str(tmp_path / 'work')
    result = run_tool([
        'tools/train.py',
        str(config), '--work-dir', work, '--cfg-options',
        *tiny_cfg_options(str(tiny_data))
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    scalars = sorted(
        glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json')))[-1]
    with open(scalars) as f:
        records = [json.loads(line) for line in f if line.strip()]
    probe_records = [r for r in records if 'reid/mAP' in r]
    assert len(probe_records) == 1
    for key in ('reid/mAP', 'reid/R1', 'reid/R5', 'reid/R10'):
        assert 0.0 < probe_records[0][key] <= 1.0
