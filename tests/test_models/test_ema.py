"""The authors' EMA of student + decoder (StudentCosineEMA with mmengine's
EMAHook) and extract_student.py's choice of raw or EMA weights."""
import math
import runpy
import sys
from types import SimpleNamespace

import pytest
import torch
from mmdpal_testing import EXTRACT_STUDENT, TINY_CONFIG, save_tiny_teacher
from mmengine.config import Config
from mmengine.hooks import EMAHook
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope

import mmdpal  # noqa: F401
from mmdpal.registry import MODELS


def tiny_model(tmp_path):
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.model.teacher.checkpoint = save_tiny_teacher(str(tmp_path / 't.pth'))
    init_default_scope('mmdpal')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def perturb(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g))


def runner_checkpoint(model, **meta):
    """A checkpoint as mmengine's runner writes it: the config's text in
    ``meta['cfg']`` (extract_student.py reads the student's heads there)."""
    cfg = Config.fromfile(TINY_CONFIG).pretty_text
    return dict(state_dict=model.state_dict(), meta=dict(meta, cfg=cfg))


def extract(src, dst, *flags):
    argv = sys.argv
    sys.argv = [EXTRACT_STUDENT, *flags, src, dst]
    try:
        runpy.run_path(EXTRACT_STUDENT, run_name='__main__')
    finally:
        sys.argv = argv
    return torch.load(dst, weights_only=True)


def test_ema_of_student_and_decoder_and_its_export(tmp_path):
    model = tiny_model(tmp_path)
    hook = EMAHook(
        ema_type='StudentCosineEMA', momentum=0.004, end_momentum=0.)
    runner = SimpleNamespace(model=model, iter=0, epoch=0)
    hook.before_run(runner)
    ema = hook.ema_model
    # the teacher is shared, not copied, and not averaged
    assert ema.module.teacher is model.teacher
    assert ema.avg_parameters and not any(
        k.startswith('teacher.') for k in ema.avg_parameters)
    assert any(k.startswith('decoder.') for k in ema.avg_parameters)
    assert not any(k.startswith('teacher.') for k in ema.state_dict())

    K = 10  # iterations of the whole run
    MessageHub.get_current_instance().update_info('max_iters', K)
    key = 'backbone.layers.0.attn.qkv.weight'
    avg = None
    for k in range(3):
        perturb(model, seed=k)
        hook.after_train_iter(runner, k)
        p = model.state_dict()[key]
        if avg is None:  # the first update copies
            avg = p.clone()
        else:  # the authors' m = 1 - 0.004 * (1 + cos(pi k / K)) / 2
            m = 1 - 0.004 * (1 + math.cos(math.pi * k / K)) / 2
            avg = m * avg + (1 - m) * p
    torch.testing.assert_close(ema.module.state_dict()[key], avg)

    # a runner checkpoint as EMAHook writes it
    ckpt = runner_checkpoint(model, epoch=1, iter=3)
    hook.before_save_checkpoint(runner, ckpt)
    src = str(tmp_path / 'epoch_1.pth')
    torch.save(ckpt, src)
    raw = extract(src, str(tmp_path / 'raw.pth'))
    averaged = extract(src, str(tmp_path / 'ema.pth'), '--ema')
    assert raw['meta']['weights'] == 'raw'
    assert averaged['meta']['weights'] == 'ema'
    assert set(raw['state_dict']) == set(averaged['state_dict']) == {
        f'backbone.{k}'
        for k in model.backbone.state_dict()
    }
    torch.testing.assert_close(raw['state_dict'][key], model.state_dict()[key])
    torch.testing.assert_close(averaged['state_dict'][key], avg)
    assert (raw['state_dict'][key] - avg).abs().max() > 0.1


def test_ema_export_of_a_checkpoint_without_ema(tmp_path):
    model = tiny_model(tmp_path)
    src = str(tmp_path / 'plain.pth')
    torch.save(runner_checkpoint(model), src)
    assert extract(src, str(tmp_path / 'raw.pth'))['meta']['weights'] == 'raw'
    with pytest.raises(SystemExit, match='has no EMA weights .* drop --ema'):
        extract(src, str(tmp_path / 'ema.pth'), '--ema')


@pytest.mark.parametrize('index', ['iter', 'iter_in_epoch'])
def test_ema_momentum_index(tmp_path, index):
    """'iter': the cosine over all iterations of the run; 'iter_in_epoch'
    (the authors' ``momentum_schedule[data_iter_step]``): the iteration
    within the epoch, so every epoch replays the first steps of the
    cosine."""
    model = tiny_model(tmp_path)
    hook = EMAHook(
        ema_type='StudentCosineEMA',
        momentum=0.004,
        end_momentum=0.,
        momentum_index=index)
    runner = SimpleNamespace(model=model, iter=0, epoch=0)
    hook.before_run(runner)
    K, E = 12, 3  # iterations of the run, epochs: 4 iterations per epoch
    hub = MessageHub.get_current_instance()
    hub.update_info('max_iters', K)
    hub.update_info('max_epochs', E)
    key = 'decoder.router.token'
    avg = None
    for k in range(7):
        perturb(model, seed=k)
        hook.after_train_iter(runner, k)
        p = model.state_dict()[key]
        if avg is None:
            avg = p.clone()
        else:
            i = k if index == 'iter' else k % (K // E)
            m = 1 - 0.004 * (1 + math.cos(math.pi * i / K)) / 2
            avg = m * avg + (1 - m) * p
    torch.testing.assert_close(hook.ema_model.module.state_dict()[key], avg)


def test_ema_momentum_index_refuses_other_values(tmp_path):
    with pytest.raises(
            ValueError,
            match=r"momentum_index='epoch': use one "
            r"of \['iter', 'iter_in_epoch'\]"):
        MODELS.build(
            dict(
                type='StudentCosineEMA',
                model=tiny_model(tmp_path),
                momentum_index='epoch'))


def test_ema_iter_in_epoch_refuses_an_iteration_loop(tmp_path):
    """mmengine's IterBasedTrainLoop reports max_epochs=1: 'iter_in_epoch'
    would silently become 'iter', so mmdpal.ScheduleCheckHook (which
    tools/train.py adds to every run) refuses it before training, in one
    line; an epoch loop, even of one epoch, and 'iter' pass."""
    from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

    from mmdpal.engine.hooks.schedule_check_hook import \
        check_ema_momentum_index
    model = tiny_model(tmp_path)
    hooks = {}
    for index in ('iter', 'iter_in_epoch'):
        hooks[index] = EMAHook(
            ema_type='StudentCosineEMA', momentum_index=index)
        hooks[index].before_run(SimpleNamespace(model=model))
    iter_loop = object.__new__(IterBasedTrainLoop)
    epoch_loop = object.__new__(EpochBasedTrainLoop)
    check_ema_momentum_index([hooks['iter']], iter_loop)
    check_ema_momentum_index([hooks['iter_in_epoch']], epoch_loop)
    with pytest.raises(
            ValueError,
            match=r"^StudentCosineEMA\(momentum_index='iter_in_epoch'\) "
            r'needs an EpochBasedTrainLoop: .* max_epochs=1\), .* '
            r"momentum_index='iter' or train_cfg=[^\n]*$"):
        check_ema_momentum_index([hooks['iter_in_epoch']], iter_loop)
