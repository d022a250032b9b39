"""Every DPAL config: parses, widths agree, Table 6 is exact, students run."""
import glob
import json
import math
import os.path as osp
import runpy
import sys

import pytest
import torch
from mmdpal_testing import (EXTRACT_STUDENT, OFFICIAL_CONFIG, REPO,
                            TINY_CONFIG, TINY_CONFIGS, TINY_TEACHER_ARCH,
                            run_tool, save_tiny_teacher, tiny_cfg_options,
                            tiny_official_cfg)
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.models import SwinTransformer, VisionTransformer

import mmdpal  # noqa: F401
from mmdpal.registry import MODELS

CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs/dpal/**/*.py'), recursive=True))


def train_scalars(work_dir):
    """The logged training records of a work dir."""
    records = []
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            records += [json.loads(line) for line in f if '"loss"' in line]
    return records


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
        t['size']
        for group in cfg.train_dataloader.dataset.pipeline[1]['transforms']
        for t in group if 'size' in t
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


def test_official_student_heads_are_the_downstream_option():
    official = Config.fromfile(OFFICIAL_CONFIG)
    student = Config.fromfile(
        osp.join(REPO, 'configs/_base_/models/dpal_vit-ti_student.py'))
    assert official.model.backbone.layer_cfgs == student.official_layer_cfgs
    heads = [c.get('num_heads', 6) for c in student.official_layer_cfgs]
    assert heads == [6] * 11 + [12]


@pytest.mark.slow
def test_official_config_trains_extracts_and_loads_downstream(
        tiny_data, tmp_path):
    """The official options on the tiny CPU config: 2 iterations of
    tools/train.py (with the EMA hook), the student extracted (raw and
    --ema) and loaded with 0 missing keys into the downstream mmpose config
    with the official last-block heads."""
    config = str(tmp_path / 'tiny_official.py')
    tiny_official_cfg().dump(config)
    work_dir = str(tmp_path / 'work')
    result = run_tool([
        'tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
        *tiny_cfg_options(str(tiny_data)), 'train_cfg.max_epochs=1',
        'train_dataloader.batch_size=8'
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    records = [r for r in train_scalars(work_dir)]
    assert [r['iter'] for r in records] == [1, 2]
    for term in ('loss_global', 'loss_local', 'loss_relation', 'loss_router',
                 'loss_expert_l2'):
        assert all(math.isfinite(r[term]) for r in records), term
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    assert 'ema_state_dict' in torch.load(ckpt, weights_only=True)

    from mmengine.registry import MODELS as ROOT_MODELS
    students = {}
    for flags in ([], ['--ema']):
        student = str(tmp_path / f'student{"".join(flags)}.pth')
        argv = sys.argv  # the converter as a user runs it, in-process
        sys.argv = [EXTRACT_STUDENT, *flags, ckpt, student]
        try:
            runpy.run_path(EXTRACT_STUDENT, run_name='__main__')
        finally:
            sys.argv = argv
        cfg = Config.fromfile(osp.join(TINY_CONFIGS, 'tiny_mmpose_coco.py'))
        cfg.model.init_cfg.update(checkpoint=student, pos_embed_grid=(8, 4))
        cfg.model.backbone.update(
            arch=dict(
                embed_dims=32,
                num_layers=2,
                num_heads=2,
                feedforward_channels=64),
            patch_size=8,
            img_size=(64, 48),
            layer_cfgs=[dict(), dict(num_heads=4)])
        init_default_scope('mmpose')
        model = ROOT_MODELS.build(cfg.model)
        model.init_weights()  # mmdpal.StrictPretrained: fails on any miss
        vit = model.backbone
        assert [layer.attn.num_heads for layer in vit.layers] == [2, 4]
        saved = torch.load(student, weights_only=True)['state_dict']
        key = 'backbone.layers.1.attn.qkv.weight'
        torch.testing.assert_close(vit.layers[1].attn.qkv.weight, saved[key])
        students[tuple(flags)] = saved[key]
        assert vit(torch.randn(1, 3, 64, 48))[0].shape == (1, 32, 8, 6)
    assert not torch.equal(students[()], students[('--ema', )])


def test_official_recipe(tmp_path):
    """AdamW (0.9, 0.95), fp16 AMP, EMA of student + decoder, 200 epochs;
    weight decay as timm's add_weight_decay: position embedding, class token
    (3-D) decayed, biases and 1-D parameters not; the paper mode decays
    neither of those two."""
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(OFFICIAL_CONFIG)
    ow = cfg.optim_wrapper
    assert (ow.type, ow.dtype, ow.loss_scale) == ('AmpOptimWrapper', 'float16',
                                                  'dynamic')
    assert ow.optimizer.betas == (0.9, 0.95)
    ema = [h for h in cfg.custom_hooks if h.type == 'EMAHook']
    assert len(ema) == 1
    assert (ema[0].ema_type, ema[0].momentum, ema[0].end_momentum,
            ema[0].momentum_index) == ('StudentCosineEMA', 0.004, 0.,
                                       'iter_in_epoch')
    assert cfg.train_cfg.max_epochs == 200
    # their PCA: one over the whole batch, their sign
    assert cfg.model.teacher.shape_mask == 'pca_batch'

    init_default_scope('mmdpal')
    decays = {}
    for mode, tiny in (('official', tiny_official_cfg()),
                       ('paper', Config.fromfile(TINY_CONFIG))):
        tiny.model.teacher.checkpoint = save_tiny_teacher(
            str(tmp_path / 't.pth'))
        model = MODELS.build(tiny.model)
        optim = build_optim_wrapper(model, tiny.optim_wrapper)
        names = {id(p): n for n, p in model.named_parameters()}
        decays[mode] = {
            names[id(p)]: group['weight_decay']
            for group in optim.optimizer.param_groups
            for p in group['params']
        }
    for mode, wd in (('official', 0.05), ('paper', 0.)):
        assert decays[mode]['backbone.pos_embed'] == wd
        assert decays[mode]['backbone.cls_token'] == wd
        assert decays[mode]['backbone.layers.0.attn.qkv.bias'] == 0
        assert decays[mode]['backbone.ln1.weight'] == 0
        assert decays[mode]['backbone.layers.0.attn.qkv.weight'] == 0.05
        assert decays[mode]['decoder.generator.queries'] == 0.05
