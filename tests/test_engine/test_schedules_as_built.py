"""Every config's learning-rate schedule as mmengine's Runner builds and
steps it, against the documented curve computed here from the recipe's
numbers.

The Runner is real (the config's ``train_cfg``, ``optim_wrapper``,
``auto_scale_lr`` and ``param_scheduler``; ``Runner.train``'s build order:
train loop, optim wrapper, lr scaling, schedulers) with a two-parameter
model and a dataloader of ``EPOCH_ITERS`` batches of the config's batch size,
so that the Runner's defaults (``end``, ``convert_to_iter_based``) apply as
in a real run. The schedulers are stepped as ``ParamSchedulerHook`` steps
them: per-iteration ones after every iteration, per-epoch ones after every
epoch, plateau ones after every validation with the loop's
``val_interval``. The lr an iteration trains with is read before its update.

Each config is matched to one documented curve below; a config matched by
none fails, so a new config needs its curve here.
"""
import glob
import math
import os.path as osp

import pytest
import torch
from mmdpal_testing import REPO
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.runner import IterBasedTrainLoop, Runner
from torch import nn
from torch.utils.data import DataLoader

import mmdpal  # noqa: F401
from mmdpal.engine import clipped_schedulers

# Iterations per epoch of the epoch-based loops (the iteration loops give
# their own epoch length in iterations: ``epoch_iters``)
EPOCH_ITERS = 50

CONFIGS = sorted(
    p for p in glob.glob(
        osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '/_base_/' not in p)  # bases are checked through the configs above
# Config fragments, added to another config's bases: no schedule of their own
FRAGMENTS = {
    'configs/downstream/reid/reid-probe_market1501-256x128.py':
    'an evaluation fragment for pretraining configs (no train_cfg)',
}


class TwoParams(BaseModel):
    """``head.weight`` (a plain parameter: lr_mult 1 under every config's
    paramwise rules) and ``head.bias`` (the ``bias`` rules)."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(2, 2)

    def forward(self, *args, **kwargs):
        return {}


# ------------------------------------------------------ documented curves --
def cosine(t, begin, end, top, bottom=0.):
    """Cosine from ``top`` at ``begin`` to ``bottom`` at ``end``."""
    return bottom + (top - bottom) * (1 + math.cos(math.pi * (t - begin) /
                                                   (end - begin))) / 2


def warmup_cosine(base, start, warmup, total, eta_min=0.):
    """Linear warm-up from ``start * base`` over ``warmup`` iterations, then
    cosine from ``base`` to ``eta_min`` at iteration ``total``: warm-up
    start, end of warm-up, middle and last iteration."""
    mid = (warmup + total) // 2
    return {
        0: start * base,
        warmup: base,
        mid: cosine(mid, warmup, total, base, eta_min),
        total - 1: cosine(total - 1, warmup, total, base, eta_min),
    }


def pretraining(cfg, epochs):
    """Table 6: AdamW 2.5e-4 per 256 images, linearly scaled to the batch
    (one process here), 10 warm-up epochs from 1e-4 x lr, cosine to 0 at the
    last epoch, per iteration."""
    base = 2.5e-4 * cfg.train_dataloader.batch_size / 256
    return warmup_cosine(base, 1e-4, 10 * EPOCH_ITERS, epochs * EPOCH_ITERS)


def saip(cfg):
    """SAIP's README run: 2.5e-4 per 256 images of an update, an update
    being 4 accumulated batches (so per 64 images of a batch, one process
    here), 10 warm-up epochs from 1e-4 x lr, cosine to 0 at epoch 300, per
    iteration."""
    base = 2.5e-4 * cfg.train_dataloader.batch_size / 64
    return warmup_cosine(base, 1e-4, 10 * EPOCH_ITERS, 300 * EPOCH_ITERS)


def demo(cfg):
    """configs/dpal/demo_*: 200 iterations, AdamW 1e-3 (not scaled), 20
    warm-up iterations from 1e-3 x lr, cosine to 1e-5."""
    return warmup_cosine(1e-3, 1e-3, 20, 200, eta_min=1e-5)


def vitpose(base):
    """ViTPose's schedule (mmpose's td-hm_ViTPose configs): 500 warm-up
    iterations from 1e-3 x lr, x0.1 at epochs 170 and 200, 210 epochs."""

    def at(epoch):
        return epoch * EPOCH_ITERS

    return {
        0: 1e-3 * base,
        500: base,
        at(105): base,
        at(170) - 1: base,
        at(170): 0.1 * base,
        at(200): 0.01 * base,
        at(210) - 1: 0.01 * base,
    }


def crowddet(cfg):
    """mmdet's CrowdDet schedule with the paper's AdamW 2e-4: 800 warm-up
    iterations from 1e-3 x lr, x0.1 at epochs 24 and 27, 30 epochs."""
    base = 2e-4

    def at(epoch):
        return epoch * EPOCH_ITERS

    return {
        0: 1e-3 * base,
        800: base,
        at(20): base,
        at(24) - 1: base,
        at(24): 0.1 * base,
        at(27): 0.01 * base,
        at(30) - 1: 0.01 * base,
    }


def lip(cfg):
    """AdamW 7e-4, 1,500 warm-up iterations from 1e-6 x lr, times a linear
    (poly, power 1) decay to 0 at the last of the 150 epochs' iterations."""
    base, total = 7e-4, 150 * EPOCH_ITERS

    def poly(t):
        return 1 - t / (total - 1)

    mid = total // 2
    return {
        0: 1e-6 * base,
        1500: base * poly(1500),
        mid: base * poly(mid),
        total - 1: 0.,
    }


def lip_official(cfg):
    """The authors' SGDRScheduler (HumanParsing utils/warmup_scheduler.py,
    --learning-rate 7e-4 --lr_divider 500 --cyclelr_divider 2
    --warmup_epochs 30 --epochs 150 --schp-start 120, cycles of 10), per
    epoch: every epoch's first and last iteration."""
    base = 7e-4
    eta_min = base / 500

    def sgdr(t):
        if t < 30:
            return eta_min + t * (base - eta_min) / 30
        if t < 120:
            return cosine(t, 30, 120, base, eta_min)
        return cosine((t - 120) % 10, 0, 10, base / 2, eta_min)

    return per_epoch(sgdr, 150, EPOCH_ITERS)


def per_epoch(lr_of_epoch, epochs, epoch_iters):
    """The first and last iteration of every epoch at its epoch's lr."""
    points = {}
    for e in range(epochs):
        points[e * epoch_iters] = lr_of_epoch(e)
        points[(e + 1) * epoch_iters - 1] = lr_of_epoch(e)
    return points


def reid(epoch_iters):
    """SOLIDER-REID's schedule (Table 7's lr 2e-4), per iteration: 20
    warm-up epochs from 0.01 x lr, cosine to 1.6e-6 at epoch 120."""
    return warmup_cosine(2e-4, 0.01, 20 * epoch_iters, 120 * epoch_iters,
                         1.6e-6)


def timm_cosine(t, lr_max, base=2e-4):
    """timm's CosineLRScheduler as I2I-ReID's solver/scheduler_factory.py
    builds it for epoch ``t`` (0-based; processor.py steps it with
    ``scheduler.step(epoch)`` after each 1-based epoch): warmup_t 20 from
    warmup_lr_init 0.01 x BASE_LR, then lr_min 0.002 x BASE_LR + cosine over
    t_initial 120 counted from epoch 0 (warmup_prefix False), cycle_limit
    1. ``lr_max`` is the group's own lr (2 x for the biases); warmup_lr_init
    and lr_min are the same for every group."""
    warmup_lr_init, lr_min = 0.01 * base, 0.002 * base
    if t < 20:
        return warmup_lr_init + t * (lr_max - warmup_lr_init) / 20
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * t / 120))


def reid_official(epoch_iters):
    """AdamW 2e-4 (train.sh), timm's curve epoch by epoch; the biases
    (BIAS_LR_FACTOR 2) on their own curve."""
    return (per_epoch(lambda e: timm_cosine(e, 2e-4), 120, epoch_iters),
            per_epoch(lambda e: timm_cosine(e, 4e-4), 120, epoch_iters))


def par(cfg):
    """AdamW 1e-4, one warm-up epoch from 0.01 x lr per iteration, then
    per epoch a cosine from lr (epoch 1) to 0 at epoch 25."""
    base = 1e-4

    def at(epoch):
        return epoch * EPOCH_ITERS

    return {
        0: 0.01 * base,
        at(1): base,
        at(13): cosine(13, 1, 25, base),
        at(25) - 1: cosine(24, 1, 25, base),
    }


# The validation losses fed to the plateau configs: down, flat (the lr drops
# after 4 epochs without a decrease), down again, flat again
PLATEAU_LOSSES = [1.0, 0.9, 0.8] + [0.8] * 6 + [0.7, 0.6] + [0.6] * 30


def par_official(epochs):
    """The authors' torch ReduceLROnPlateau(factor=0.1, patience=4) on AdamW
    1e-4, stepped with each epoch's validation loss (train.py), epoch by
    epoch."""
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1e-4)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=0.1, patience=4)
    lrs = []
    for e in range(epochs):
        lrs.append(optimizer.param_groups[0]['lr'])
        theirs.step(PLATEAU_LOSSES[e])
    return per_epoch(lambda e: lrs[e], epochs, EPOCH_ITERS)


def documented_curve(name, cfg):
    """``({iteration: lr of head.weight}, {iteration: lr of head.bias} or
    None)`` for the config ``name`` (its path from the repository root)."""
    base = osp.basename(name)
    if name.startswith('configs/dpal/'):
        if base.startswith('demo_'):
            return demo(cfg), None
        if base == 'vit-ti_path-b_lup1m_official.py':
            # their script: 200 epochs, 10 warm-up, cosine over 190
            return pretraining(cfg, 200), None
        return pretraining(cfg, 100), None
    if name.startswith('configs/saip/'):
        return saip(cfg), None
    if name.startswith('configs/rivals/'):
        # Table 1's rivals keep the DPAL config's recipe: only the
        # objective changes (docs/methods.md)
        return pretraining(cfg, 100), None
    if name.startswith('configs/downstream/mmpose/'):
        return vitpose(5e-4), None
    if name.startswith('configs/downstream/mmdet/crowddet'):
        return crowddet(cfg), None
    if name.startswith('configs/downstream/mmseg/'):
        return (lip_official(cfg)
                if base.endswith('_official.py') else lip(cfg)), None
    if name.startswith('configs/downstream/reid/bnneck-reid'):
        epoch_iters = {
            'market1501': 202,  # 12,936 images / 64
            'msmt17': 510 if not base.endswith('_official.py') else 127,
        }['msmt17' if 'msmt17' in base else 'market1501']
        if base.endswith('_official.py'):
            return reid_official(epoch_iters)
        return reid(epoch_iters), None
    if name.startswith('configs/downstream/attribute/'):
        if base.endswith('_official.py'):
            return par_official(30 if 'pa100k' in base else 22), None
        return par(cfg), None
    raise AssertionError(
        f'{name}: no documented lr curve in {__file__}; add one')


# ------------------------------------------------------------- the Runner --
def built_runner(cfg, work_dir):
    """A Runner of ``cfg``'s training parts, built in ``Runner.train``'s
    order up to the schedulers (the Runner gets the training keys, not the
    whole config, whose logged text takes seconds). An ``AmpOptimWrapper``
    (CUDA only) becomes an ``OptimWrapper``: the schedule does not depend on
    it."""
    optim_wrapper = cfg.optim_wrapper.copy()
    if optim_wrapper.get('type') == 'AmpOptimWrapper':
        optim_wrapper.type = 'OptimWrapper'
        for amp_key in ('dtype', 'loss_scale'):
            optim_wrapper.pop(amp_key, None)
    batch_size = cfg.train_dataloader.get('batch_size', 1)
    loader = DataLoader(
        list(range(batch_size * EPOCH_ITERS)), batch_size=batch_size)
    runner = Runner(
        model=TwoParams(),
        work_dir=work_dir,
        train_dataloader=loader,
        train_cfg=cfg.train_cfg,
        optim_wrapper=optim_wrapper,
        param_scheduler=cfg.param_scheduler,
        auto_scale_lr=cfg.get('auto_scale_lr'),
        default_scope=cfg.get('default_scope', 'mmengine'),
        log_level='WARNING',
        experiment_name=osp.basename(work_dir))
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.scale_lr(runner.optim_wrapper, runner.auto_scale_lr)
    runner.param_schedulers = runner.build_param_scheduler(
        runner.param_schedulers)
    return runner


def group_of(optimizer, param):
    [group] = [
        g for g in optimizer.param_groups
        if any(p is param for p in g['params'])
    ]
    return group


def stepped_lrs(runner, num_iters):
    """The lr of ``head.weight`` and ``head.bias`` at each iteration, the
    schedulers stepped as ParamSchedulerHook steps them."""
    loop, schedulers = runner.train_loop, runner.param_schedulers
    optimizer = runner.optim_wrapper.optimizer
    groups = [
        group_of(optimizer, p)
        for p in (runner.model.head.weight, runner.model.head.bias)
    ]
    val_interval = loop.val_interval
    if isinstance(loop, IterBasedTrainLoop):
        epoch_iters = num_iters  # one epoch
    else:
        epoch_iters = len(loop.dataloader)
    lrs = []
    for t in range(num_iters):
        lrs.append([g['lr'] for g in groups])
        runner.optim_wrapper.step()  # no gradients: only counts the step
        for s in schedulers:  # after_train_iter
            if not s.by_epoch:
                s.step()
        if (t + 1) % epoch_iters:
            continue
        epoch = (t + 1) // epoch_iters
        for s in schedulers:  # after_train_epoch
            if s.by_epoch:
                s.step()
        if epoch % val_interval == 0:  # after_val_epoch
            metrics = {
                s.monitor: PLATEAU_LOSSES[epoch - 1]
                for s in schedulers if getattr(s, 'need_val_args', False)
            }
            for s in schedulers:
                if s.by_epoch and getattr(s, 'need_val_args', False):
                    s.step(metrics)
    return lrs


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_schedule_as_the_runner_builds_it(path, tmp_path):
    name = osp.relpath(path, REPO)
    cfg = Config.fromfile(path)
    if name in FRAGMENTS:
        assert 'param_scheduler' not in cfg and 'train_cfg' not in cfg, (
            f'{name} is listed as a fragment ({FRAGMENTS[name]}) but has a '
            'schedule: give it a documented curve')
        return
    runner = built_runner(cfg, str(tmp_path / name.replace('/', '_')))
    schedulers = runner.param_schedulers
    others = {s.param_name for s in schedulers} - {'lr'}
    assert not others, f'{name} schedules {others}: add its documented curve'
    assert clipped_schedulers(cfg.param_scheduler, schedulers,
                              runner.train_loop) == []

    weight_curve, bias_curve = documented_curve(name, cfg)
    lrs = stepped_lrs(runner, runner.train_loop.max_iters)
    assert len(lrs) == max(weight_curve) + 1, (
        f'{name}: the run has {len(lrs)} iterations, the documented curve '
        f'{max(weight_curve) + 1}')
    for column, curve in enumerate((weight_curve, bias_curve)):
        for t, expected in sorted((curve or {}).items()):
            assert lrs[t][column] == pytest.approx(
                expected, rel=1e-6, abs=1e-15), (
                    f'{name}: lr of head.{("weight", "bias")[column]} at '
                    f'iteration {t}')


# ------------------------------------------------------------- bad input --
def tiny_cfg(param_scheduler, train_cfg):
    return Config(
        dict(
            train_dataloader=dict(batch_size=1),
            train_cfg=train_cfg,
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
            param_scheduler=param_scheduler))


OLD_REID_OFFICIAL = dict(
    type='mmdpal.TimmCosineLR',
    epoch_iters=2,
    warmup_epochs=2,
    max_epochs=10,
    warmup_lr=1e-3,
    eta_min=2e-4)


@pytest.mark.parametrize('scheduler, train_cfg, line', [
    (OLD_REID_OFFICIAL, dict(type='IterBasedTrainLoop', max_iters=20),
     'param_scheduler[0] (TimmCosineLR) steps per iteration but its config '
     'has no by_epoch, so the Runner ended it at max_epochs (1) iterations: '
     'set by_epoch=False (or end) in its config'),
    (dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0,
          end=5), dict(type='IterBasedTrainLoop', max_iters=20),
     'param_scheduler[0] (LinearLR) steps per epoch but the train loop is an '
     'IterBasedTrainLoop (one epoch), so it would keep its first value: set '
     'by_epoch=False with begin/end in iterations'),
    (dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=30,
          T_max=30), dict(type='EpochBasedTrainLoop', max_epochs=20),
     'param_scheduler[0] (CosineAnnealingLR) ends at epoch 30 but the run '
     'has 20 epochs, so its curve is cut: set its end (and T_max, where it '
     'has one) within the run, or lengthen train_cfg'),
])
def test_a_clipped_scheduler_is_one_warning_line(tmp_path, scheduler,
                                                 train_cfg, line):
    cfg = tiny_cfg([scheduler], train_cfg)
    runner = built_runner(cfg, str(tmp_path / 'bad'))
    warnings = []
    runner.logger.warning = warnings.append
    mmdpal.engine.ScheduleCheckHook().before_train(runner)
    assert warnings == [line]


def test_the_old_reid_official_schedule_was_constant(tmp_path):
    """What the check warns about: the Runner ends the scheduler at
    max_epochs = 1, and the lr stays at warmup_lr for the whole run."""
    cfg = tiny_cfg([OLD_REID_OFFICIAL],
                   dict(type='IterBasedTrainLoop', max_iters=20))
    runner = built_runner(cfg, str(tmp_path / 'old'))
    assert {lr for lr, _ in stepped_lrs(runner, 20)} == {1e-3}
    fixed = tiny_cfg([dict(OLD_REID_OFFICIAL, by_epoch=False)],
                     dict(type='IterBasedTrainLoop', max_iters=20))
    runner = built_runner(fixed, str(tmp_path / 'fixed'))
    lrs = [lr for lr, _ in stepped_lrs(runner, 20)]
    assert lrs[0] == lrs[1] == pytest.approx(1e-3)
    assert lrs[2] == pytest.approx(1e-3 + (0.1 - 1e-3) / 2)  # epoch 1
    assert lrs[19] == pytest.approx(2e-4 + 0.5 * (0.1 - 2e-4) *
                                    (1 + math.cos(math.pi * 9 / 10)))


def test_timm_cosine_lr_refuses_by_epoch():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    kwargs = {k: v for k, v in OLD_REID_OFFICIAL.items() if k != 'type'}
    with pytest.raises(ValueError, match='set by_epoch=False'):
        mmdpal.engine.TimmCosineLR(optimizer, by_epoch=True, **kwargs)
