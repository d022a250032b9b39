"""DPALDistiller: losses of Eq. 7, frozen teacher, checkpoints, ablations."""
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmdpal_testing import REPO, TINY_CONFIG, save_tiny_teacher
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

import mmdpal  # noqa: F401
from mmdpal.engine import FiniteLossHook, RouterLossScheduleHook
from mmdpal.registry import MODELS


def tiny_model_cfg(tmp_path):
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.model.teacher.checkpoint = save_tiny_teacher(
        str(tmp_path / 'teacher.pth'))
    return cfg.model


def build(model_cfg):
    init_default_scope('mmdpal')
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


def views(batch=2):
    g = torch.Generator().manual_seed(1)
    return [
        torch.randn(batch, 3, 64, 32, generator=g),
        torch.randn(batch, 3, 32, 24, generator=g),
        torch.randn(batch, 3, 32, 24, generator=g),
        torch.randn(batch, 3, 64, 64, generator=g),
    ]


def test_loss_terms_teacher_frozen_and_left_out_of_checkpoints(tmp_path):
    model = build(tiny_model_cfg(tmp_path))
    teacher_before = {
        k: v.clone()
        for k, v in model.teacher.state_dict().items()
    }
    student_before = {
        k: v.clone()
        for k, v in model.backbone.state_dict().items()
    }
    losses = model.loss(views(), None)
    assert set(losses) == {'loss_global', 'loss_local', 'loss_relation'}
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())

    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-2))
    model.train()
    for _ in range(3):
        data = dict(
            inputs=[(v * 50 + 120).clamp(0, 255).to(torch.uint8)
                    for v in views()],
            data_samples=None)
        model.train_step(data, optim)
    assert not model.teacher.training  # still eval after model.train()
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), f'teacher {k} changed'
    changed = [
        k for k, v in model.backbone.state_dict().items()
        if not torch.equal(v, student_before[k])
    ]
    assert len(changed) > 10  # the student did learn

    state = model.state_dict()
    assert not any(k.startswith('teacher.') for k in state)
    assert any(k.startswith('backbone.') for k in state)
    assert any(k.startswith('decoder.') for k in state)
    # a checkpoint without the teacher reloads strictly
    fresh = build(tiny_model_cfg(tmp_path))
    fresh.load_state_dict(state, strict=True)
    for k, v in fresh.backbone.state_dict().items():
        assert torch.equal(v, model.backbone.state_dict()[k])


@pytest.mark.parametrize('name,expected', [
    ('lg', {'loss_global'}),
    ('ll', {'loss_local'}),
    ('lr', {'loss_relation'}),
    ('lg-ll', {'loss_global', 'loss_local'}),
    ('lg-lr', {'loss_global', 'loss_relation'}),
    ('ll-lr', {'loss_local', 'loss_relation'}),
])
def test_table3_ablation_configs(tmp_path, name, expected):
    ablation = Config.fromfile(
        osp.join(REPO,
                 f'configs/dpal/ablations/vit-ti_path-b_lup1m_{name}.py'))
    model_cfg = tiny_model_cfg(tmp_path)
    for key in ('global_loss', 'local_loss', 'relation_loss'):
        model_cfg[key] = ablation.model[key]
    model = build(model_cfg)
    assert set(model.loss(views(), None)) == expected


@pytest.mark.parametrize('variant',
                         ['dec-linear', 'dec-mae', 'dec-moe', 'dec-lowrank'])
def test_table11_decoder_configs(tmp_path, variant):
    ablation = Config.fromfile(
        osp.join(REPO,
                 f'configs/dpal/ablations/vit-ti_path-b_lup1m_{variant}.py'))
    model_cfg = tiny_model_cfg(tmp_path)
    dec = ablation.model.decoder.to_dict()
    dec.update(in_dims=32, out_dims=48)
    if 'num_heads' in dec and dec['type'] != 'TransformerDecoder':
        dec['num_heads'] = 2
    model_cfg.decoder = dec
    model = build(model_cfg)
    losses = model.loss(views(), None)
    assert set(losses) == {'loss_global', 'loss_local', 'loss_relation'}
    sum(losses.values()).backward()


def test_official_config_adds_the_authors_terms(tmp_path):
    official = Config.fromfile(
        osp.join(REPO, 'configs/dpal/vit-ti_path-b_lup1m_official.py'))
    model_cfg = tiny_model_cfg(tmp_path)
    model_cfg.teacher.update(
        shape_mask=official.model.teacher.shape_mask,
        relation=official.model.teacher.relation)
    for k in ('weight_scale', 'router_loss_weight', 'expert_l2_weight'):
        model_cfg.decoder[k] = official.model.decoder[k]
    model = build(model_cfg)
    losses = model.loss(views(), None)
    assert set(losses) == {
        'loss_global', 'loss_local', 'loss_relation', 'loss_router',
        'loss_expert_l2'
    }
    hook = RouterLossScheduleHook(milestones=[(0, 0.1), (20, 0.01)])
    runner = SimpleNamespace(model=model, epoch=25)
    hook.before_train_epoch(runner)
    assert model.decoder.router_loss_weight == 0.01


def test_view_size_not_divisible_by_patch(tmp_path):
    model = build(tiny_model_cfg(tmp_path))
    with pytest.raises(ValueError, match='not divisible by the student patch'):
        model.student_tokens(torch.randn(1, 3, 60, 32))


def test_extract_feat_is_the_student(tmp_path):
    model = build(tiny_model_cfg(tmp_path))
    x = torch.randn(1, 3, 64, 32)
    torch.testing.assert_close(model.extract_feat(x)[0], model.backbone(x)[0])


def test_non_finite_loss_stops_with_the_term_and_iteration():
    hook = FiniteLossHook()
    runner = SimpleNamespace(iter=41, epoch=2)
    hook.after_train_iter(
        runner,
        0,
        outputs=dict(loss=torch.tensor(1.), loss_global=torch.tensor(0.5)))
    with pytest.raises(
            FloatingPointError, match=r'loss_relation is nan at iteration 42'):
        hook.after_train_iter(
            runner,
            0,
            outputs=dict(
                loss=torch.tensor(1.),
                loss_relation=torch.tensor(float('nan'))))
    with pytest.raises(FloatingPointError, match='loss_local is inf'):
        hook.after_train_iter(runner, 0, outputs=dict(loss_local=float('inf')))
