"""Every DPAL config: parses, widths agree, Table 6 is exact, students run."""
import glob
import os.path as osp

import pytest
import torch
from mmdpal_testing import REPO, TINY_TEACHER_ARCH, save_tiny_teacher
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.models import SwinTransformer, VisionTransformer

import mmdpal  # noqa: F401
from mmdpal.registry import MODELS

CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs/dpal/**/*.py'), recursive=True))


def vit_dims(backbone):
    arch = backbone['arch']
    if isinstance(arch, str):
        arch = VisionTransformer.arch_zoo[arch.lower()]
    return arch['embed_dims']


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_widths_agree(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdpal'
    model = cfg.model
    assert model.type == 'DPALDistiller'
    student = model.backbone
    if student.type.endswith('SwinTransformer'):
        s_dims = SwinTransformer.arch_zoo[student.arch]['embed_dims'] * 8
    else:
        s_dims = vit_dims(student)
        assert student.out_type == 'raw'
    assert model.decoder.in_dims == s_dims
    assert model.decoder.out_dims == vit_dims(model.teacher.backbone)
    assert model.teacher.checkpoint.endswith('.pth')


def test_table6_exactly():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/dpal/vit-ti_path-b_lup1m.py'))
    assert cfg.model.backbone.arch == dict(
        embed_dims=192, num_layers=12, num_heads=6, feedforward_channels=768)
    assert cfg.model.backbone.img_size == (256, 128)
    assert cfg.model.teacher.backbone.arch == 'b'
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay) == ('AdamW', 2.5e-4, 0.05)
    assert 'betas' not in opt  # paper: AdamW defaults
    assert cfg.auto_scale_lr == dict(base_batch_size=256, enable=True)
    assert cfg.train_dataloader.batch_size == 256  # x 8 GPUs = 2048
    pw = cfg.optim_wrapper.paramwise_cfg
    assert pw.norm_decay_mult == pw.bias_decay_mult == pw.flat_decay_mult == 0
    assert set(pw.custom_keys) == {'.pos_embed', '.cls_token'}
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.begin, warmup.end) == ('LinearLR', 0, 10)
    assert (cosine.type, cosine.begin, cosine.end,
            cosine.T_max) == ('CosineAnnealingLR', 10, 100, 90)
    assert cfg.train_cfg.max_epochs == 100
    for loss in ('global_loss', 'local_loss', 'relation_loss'):
        assert cfg.model[loss].loss_weight == 1.0  # lambdas of Eq. 7
    sizes = [
        t['scale']
        for group in cfg.train_dataloader.dataset.pipeline[1]['transforms']
        for t in group if 'scale' in t
    ]
    assert sizes == [(256, 128), (128, 96)]
    assert cfg.train_dataloader.dataset.pipeline[2]['size'] == (256, 256)


@pytest.mark.parametrize('name',
                         ['vit-s_path-b_lup1m.py', 'swin-ti_path-b_lup1m.py'])
def test_other_students_run_at_the_real_view_sizes(tmp_path, name):
    cfg = Config.fromfile(osp.join(REPO, 'configs/dpal', name))
    init_default_scope('mmdpal')
    cfg.model.teacher.backbone = dict(
        type='mmpretrain.VisionTransformer',
        arch=TINY_TEACHER_ARCH,
        img_size=(64, 32),
        patch_size=8)
    cfg.model.teacher.checkpoint = save_tiny_teacher(str(tmp_path / 't.pth'))
    cfg.model.decoder.update(out_dims=48, expert_rank=4)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    views = [
        torch.randn(1, 3, 256, 128),
        torch.randn(1, 3, 128, 96),
        torch.randn(1, 3, 128, 96),
        torch.randn(1, 3, 256, 256)
    ]
    losses = model.loss(views, None)
    assert set(losses) == {'loss_global', 'loss_local', 'loss_relation'}
    sum(losses.values()).backward()
    _, _, grid = model.student_tokens(views[0])
    assert grid == ((16, 8) if name.startswith('vit') else (8, 4))
