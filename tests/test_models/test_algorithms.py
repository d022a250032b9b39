"""DPALDistiller: losses of Eq. 7, frozen teacher, checkpoints, ablations."""
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmdpal_testing import (REPO, TINY_CONFIG, cubic_resize_1d,
                            save_tiny_teacher, tiny_official_cfg)
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmpretrain.models import VisionTransformer
from torch.overrides import TorchFunctionMode

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


def official_model_cfg(tmp_path):
    cfg = tiny_official_cfg()
    cfg.model.teacher.checkpoint = save_tiny_teacher(
        str(tmp_path / 'teacher.pth'))
    return cfg.model


def test_official_config_adds_the_authors_terms(tmp_path):
    model = build(official_model_cfg(tmp_path))
    losses = model.loss(views(), None)
    assert set(losses) == {
        'loss_global', 'loss_local', 'loss_relation', 'loss_router',
        'loss_expert_l2'
    }
    hook = RouterLossScheduleHook(milestones=[(0, 0.1), (20, 0.01)])
    runner = SimpleNamespace(model=model, epoch=25)
    hook.before_train_epoch(runner)
    assert model.decoder.router_loss_weight == 0.01


def decoder_calls(model, inputs):
    """The losses and (pattern, DecoderOutput) of each of the 5 decoder
    calls of a step, each class token decoded alone: the reference the
    model's batched class-token call must equal."""
    losses = model.loss(inputs, None)
    global_view, *local_views, multi = inputs
    s_cls, s_patch, grid = model.student_tokens(global_view)
    cls = [s_cls] + [model.student_tokens(v)[0] for v in local_views]
    calls = [('global', model.decoder(c[:, None])) for c in cls]
    calls.append(('local', model.decoder(s_patch)))
    m_cls, m_patch, _ = model.student_tokens(multi)
    if model.relation_tokens == 'all':
        m_patch = torch.cat((m_cls[:, None], m_patch), 1)
    calls.append(('relation', model.decoder(m_patch)))
    return losses, calls


@pytest.mark.parametrize('mode', ['paper', 'official'])
def test_class_tokens_in_one_decoder_call_equal_separate_calls(tmp_path, mode):
    """The class tokens of the M views go through the decoder (and the local
    views through the student) as one batch: the same losses as one call per
    view, to fp32 round-off."""
    model_cfg = official_model_cfg(tmp_path) if mode == 'official' \
        else tiny_model_cfg(tmp_path)
    model = build(model_cfg)
    inputs = views()
    seen = []
    model.decoder.register_forward_hook(
        lambda m, args, out: seen.append(tuple(args[0].shape[:2])))
    losses, calls = decoder_calls(model, inputs)
    n = 65 if mode == 'official' else 64
    assert seen[:3] == [(6, 1), (2, 32), (2, n)]  # 3 views x batch 2
    t = model.teacher(inputs[0], (8, 4), with_relation=False)
    expected = model.global_loss([out.tokens[:, 0] for _, out in calls[:3]],
                                 t.cls_token)
    torch.testing.assert_close(losses['loss_global'], expected)
    if mode == 'official':
        expected = model.decoder.loss(calls)
        for key in ('loss_router', 'loss_expert_l2'):
            torch.testing.assert_close(losses[key], expected[key])


def test_auxiliary_terms_average_the_five_decoder_calls(tmp_path):
    """Routing CE (targets 0 for the 3 class tokens, 1 local, 2 relation)
    and expert L2 (0.025 * sum of squares of the mixed matrix, batch mean),
    each the mean over the 5 decoder calls of a step, as the authors."""
    model = build(official_model_cfg(tmp_path))
    losses, calls = decoder_calls(model, views())
    # 3 class tokens (1 token), global patches (8x4), multi-person image
    # with its class token (1 + 8x8)
    assert [out.tokens.shape[1] for _, out in calls] == [1, 1, 1, 32, 65]
    targets = [0, 0, 0, 1, 2]
    ce = sum(-out.router_weights[:, t].log().mean()
             for (_, out), t in zip(calls, targets)) / 5
    torch.testing.assert_close(losses['loss_router'], 0.1 * ce)
    l2 = sum(out.mixed_experts.pow(2).sum((1, 2)).mean()
             for _, out in calls) / 5
    torch.testing.assert_close(losses['loss_expert_l2'], 0.025 * l2)


def test_relation_with_the_class_token(tmp_path):
    """relation_tokens='all': Eq. 6 over the 1 + L tokens of teacher and
    decoded student; 'patches': over the L patches."""
    for tokens, n in (('all', 65), ('patches', 64)):
        cfg = official_model_cfg(tmp_path)
        cfg.relation_tokens = tokens
        model = build(cfg)
        multi = views()[-1]
        losses = model.loss(views(), None)
        s_cls, s_patch, grid = model.student_tokens(multi)
        student = torch.cat((s_cls[:, None], s_patch), 1)[:, -n:]
        tokens_t, _, _ = model.teacher.tokens_and_attention(multi)
        t = tokens_t[:, -n:]
        target = torch.softmax(t @ t.transpose(1, 2) / 48**0.5, -1)
        expected = model.relation_loss(model.decoder(student).tokens, target)
        torch.testing.assert_close(losses['loss_relation'], expected)


def test_last_block_heads(tmp_path):
    cfg = official_model_cfg(tmp_path)
    model = build(cfg)
    heads = [layer.attn.num_heads for layer in model.backbone.layers]
    assert heads == [2, 4]
    cfg.backbone.layer_cfgs = [dict(), dict(num_heads=5)]
    with pytest.raises(
            ValueError,
            match=(r'backbone.layer_cfgs\[1\].num_heads=5 does not divide '
                   r'the width 32: use one of \[1, 2, 4, 8, 16, 32\]')):
        build(cfg)


def test_student_sequence_1d_pos_embed(tmp_path):
    """The authors' quirk: the 8x4 patch position embeddings are resized to
    a view's L patches as a flat sequence of 32 (cubic), not on the grid."""
    model = build(official_model_cfg(tmp_path))
    vit = model.backbone
    local = torch.randn(2, 3, 32, 24)  # 4x3 grid: 12 patches
    pos = vit.pos_embed.detach()[0]
    ref = cubic_resize_1d(pos[1:], 12, 12 / 32)
    plain = VisionTransformer(
        arch=dict(
            embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
        img_size=(32, 24),
        patch_size=8,
        out_type='raw',
        layer_cfgs=[dict(), dict(num_heads=4)])
    plain.eval()
    state = vit.state_dict()
    state['pos_embed'] = torch.cat((pos[:1], ref))[None]
    plain.load_state_dict(state)
    s_cls, s_patch, grid = model.student_tokens(local)
    expected = plain(local)[0]
    assert grid == (4, 3)
    torch.testing.assert_close(s_cls, expected[:, 0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(s_patch, expected[:, 1:], rtol=1e-5, atol=1e-5)
    # paper mode: mmpretrain's 2-D resize, another embedding
    cfg = official_model_cfg(tmp_path)
    cfg.student_pos_embed_resize = 'grid'
    paper = build(cfg)
    paper.backbone.load_state_dict(vit.state_dict())
    assert (paper.student_tokens(local)[1] - s_patch).abs().max() > 1e-3
    # the global view is at the pretraining size: nothing resized
    g = views()[0]
    torch.testing.assert_close(
        paper.student_tokens(g)[1],
        model.student_tokens(g)[1])


@pytest.mark.parametrize('key,value,match', [
    ('student_pos_embed_resize', 'sequence_1d',
     r"student_pos_embed_resize='sequence_1d' .* SwinTransformer has none: "
     r"use one of \['grid'\]"),
    ('relation_tokens', 'all',
     r"relation_tokens='all' needs a student with a class token .* "
     r'SwinTransformer has none'),
    ('relation_tokens', 'cls', r"relation_tokens='cls': use one of "
     r"\['patches', 'all'\]"),
    ('student_pos_embed_resize', '2d', r"student_pos_embed_resize='2d'"),
])
def test_bad_student_options_fail_at_build(tmp_path, key, value, match):
    cfg = tiny_model_cfg(tmp_path)
    cfg.backbone = dict(
        type='mmpretrain.SwinTransformer',
        arch=dict(embed_dims=8, depths=[1, 1], num_heads=[1, 2]),
        img_size=(64, 32),
        window_size=2,
        out_indices=(1, ))
    cfg.decoder.in_dims = 16
    cfg[key] = value
    with pytest.raises(ValueError, match=match) as e:
        build(cfg)
    assert '\n' not in str(e.value)


def test_relation_with_class_token_needs_the_same_grids(tmp_path):
    cfg = official_model_cfg(tmp_path)
    cfg.teacher.align = 'interpolate_tokens'
    with pytest.raises(ValueError, match="align='resize_input'"):
        build(cfg)


def test_view_size_not_divisible_by_patch(tmp_path):
    model = build(tiny_model_cfg(tmp_path))
    with pytest.raises(ValueError, match='not divisible by the student patch'):
        model.student_tokens(torch.randn(1, 3, 60, 32))


def test_compiled_blocks_give_the_same_losses_and_gradients(tmp_path):
    """compile_blocks: every block of student and teacher compiled in place
    (same state dict keys), same losses and gradients as eager (aot_eager:
    the graphs torch.compile traces, without inductor's code generation)."""
    eager = build(tiny_model_cfg(tmp_path))
    cfg = tiny_model_cfg(tmp_path)
    cfg.compile_blocks = dict(backend='aot_eager')
    compiled = build(cfg)
    compiled.load_state_dict(eager.state_dict())
    for vit in (compiled.backbone, compiled.teacher.vit):
        assert all(b._compiled_call_impl is not None for b in vit.layers)
    assert eager.backbone.layers[0]._compiled_call_impl is None
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    expected, got = eager.loss(views(), None), compiled.loss(views(), None)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key])
    sum(expected.values()).backward()
    sum(got.values()).backward()
    for (name, p), q in zip(eager.named_parameters(), compiled.parameters()):
        if p.grad is not None:
            torch.testing.assert_close(q.grad, p.grad, msg=name)


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


class HostSyncDetector(TorchFunctionMode):
    """Records the tensor operations that wait for the device: reading a
    value on the host (``item``, ``bool``, ``tolist``, ...) or an output
    whose size depends on the data (``nonzero``, ``unique``, ...), or an
    operation that checks its result on the host (``linalg.eigh``, which
    its documentation says synchronises a CUDA device)."""

    SYNCING = {
        'item', 'tolist', 'numpy', '__bool__', '__int__', '__float__',
        '__index__', 'nonzero', 'unique', 'unique_consecutive',
        'masked_select', 'argwhere', 'bincount', 'repeat_interleave',
        'linalg_eigh'
    }

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, '__name__', '')
        if name in self.SYNCING:
            self.calls.append(name)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize('mode', ['paper', 'official'])
def test_loss_has_no_host_sync(tmp_path, mode):
    model_cfg = official_model_cfg(tmp_path) if mode == 'official' \
        else tiny_model_cfg(tmp_path)
    model = build(model_cfg)
    inputs = views()
    detector = HostSyncDetector()
    with detector:
        losses = model.loss(inputs, None)
        sum(losses.values()).backward()
    # the official mode's one: the PCA over the whole batch (their code
    # copies the tokens to the CPU for it at every step)
    assert detector.calls == ([] if mode == 'paper' else ['linalg_eigh'])
    # the detector does see one
    detector.calls.clear()
    with detector:
        float(losses['loss_global'])
    assert detector.calls == ['__float__']


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
@pytest.mark.parametrize('mode', ['paper', 'official'])
def test_loss_never_waits_for_the_gpu(tmp_path, mode):
    """CUDA's own sync detector (mode 'warn': one warning per host-device
    sync) over ``loss()`` and its backward: none in the paper mode; in the
    official mode only the batch PCA's ``linalg.eigh`` in the teacher (their
    code copies the tokens to the CPU for it)."""
    import warnings
    model_cfg = official_model_cfg(tmp_path) if mode == 'official' \
        else tiny_model_cfg(tmp_path)
    model = build(model_cfg).cuda()
    inputs = [v.cuda() for v in views()]
    torch.cuda.synchronize()

    def syncs(fn):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            torch.cuda.set_sync_debug_mode('warn')
            try:
                out = fn()
            finally:
                torch.cuda.set_sync_debug_mode('default')
        return out, [
            w for w in caught
            if 'synchronizing CUDA operation' in str(w.message)
        ]

    losses, caught = syncs(lambda: model.loss(inputs, None))
    _, in_backward = syncs(lambda: sum(losses.values()).backward())
    assert in_backward == []
    if mode == 'paper':
        assert caught == []
    else:
        assert caught and all(
            w.filename.endswith(osp.join('teachers', 'vit_teacher.py'))
            for w in caught), [(w.filename, w.lineno) for w in caught]
    assert all(torch.isfinite(v) for v in losses.values())
    # the detector does see one
    _, seen = syncs(lambda: float(losses['loss_global']))
    assert len(seen) == 1
