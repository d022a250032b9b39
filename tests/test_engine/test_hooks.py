"""mmdpal's engine parts: the CPU/GPU bf16 optimizer wrapper, the hooks and
the keyed random streams behind exact resume."""
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdpal_testing import write_person_images
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import mmdpal  # noqa: F401
from mmdpal.datasets import LUPersonDataset
from mmdpal.engine import (BadImageLoggerHook, FiniteLossHook,
                           ResumableRandomnessHook)
from mmdpal.utils import random_stream


@pytest.mark.parametrize('native', [True, False])
def test_bf16_autocast_wrapper_runs_forward_in_bf16_keeps_fp32_state(
        native, monkeypatch):
    """bf16 autocast where the CPU has native bf16, fp32 where it would be
    emulated (AVX2 only: 50x slower), said in one log line; parameters,
    gradients and optimizer fp32 either way."""
    from mmdpal.engine.optim_wrappers import bf16_autocast
    monkeypatch.setattr(bf16_autocast.platform, 'machine', lambda: 'x86_64')
    monkeypatch.setattr(torch.cpu, '_is_amx_tile_supported', lambda: False)
    monkeypatch.setattr(torch.cpu, '_is_avx512_bf16_supported', lambda: native)
    init_default_scope('mmdpal')
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 8), torch.nn.GELU(), torch.nn.Linear(8, 1))
    wrapper = build_optim_wrapper(
        model,
        dict(
            type='BF16AutocastOptimWrapper',
            optimizer=dict(type='SGD', lr=0.1)))
    x = torch.randn(16, 8)
    before = [p.detach().clone() for p in model.parameters()]
    logged = []
    monkeypatch.setattr(bf16_autocast, 'print_log',
                        lambda msg, **kwargs: logged.append(msg))
    with wrapper.optim_context(model):
        out = model(x)
    with wrapper.optim_context(model):  # decided once
        pass
    assert logged == [
        'BF16AutocastOptimWrapper: bf16 autocast on this CPU (AVX-512 BF16)'
        if native else
        'BF16AutocastOptimWrapper: fp32 on this CPU (no AVX-512 BF16 or AMX)'
    ]
    assert out.dtype == (torch.bfloat16 if native else torch.float32)
    wrapper.update_params(out.float().pow(2).mean())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert any(not torch.equal(a, b)
               for a, b in zip(before, model.parameters()))
    # outside the context the model is fp32 again
    assert model(x).dtype == torch.float32


@pytest.mark.parametrize('ratio, native', [(0.4, True), (40., False)])
def test_bf16_support_of_other_cpus_is_probed(ratio, native, monkeypatch):
    """Not x86: a timed bf16 / fp32 matmul decides (native: at most 2x)."""
    from mmdpal.engine.optim_wrappers import bf16_autocast
    monkeypatch.setattr(bf16_autocast.platform, 'machine', lambda: 'aarch64')
    monkeypatch.setattr(bf16_autocast, '_bf16_matmul_ratio', lambda: ratio)
    assert bf16_autocast.cpu_bf16_support() == (
        native, f'a bf16 matmul takes {ratio:.1f}x the fp32 one')


def test_bf16_matmul_ratio_measures_this_cpu():
    from mmdpal.engine.optim_wrappers.bf16_autocast import _bf16_matmul_ratio
    ratio = _bf16_matmul_ratio(size=128, repeats=2)
    assert 0 < ratio < 1000


class _Logger:

    def __init__(self):
        self.lines = []

    def info(self, msg):
        self.lines.append(msg)


class _Dataset(list):
    """A dataset stand-in with LUPersonDataset's bad-image interface."""
    max_bad_fraction = 0.05

    def __init__(self, size, bad=()):
        super().__init__([0] * size)
        self.bad = list(bad)

    def bad_image_indices(self):
        return np.array(self.bad, dtype=np.int64)


def _runner(dataset, iter=0):
    return SimpleNamespace(
        train_dataloader=SimpleNamespace(dataset=dataset),
        logger=_Logger(),
        iter=iter,
        epoch=0)


def test_bad_image_hook_logs_the_count():
    runner = _runner(_Dataset(200, bad=[3, 17, 150]))
    hook = BadImageLoggerHook()
    hook.after_train_epoch(runner)
    assert runner.logger.lines == [
        'undecodable training images skipped so far: 3 of 200 (1.500%)'
    ]


def test_bad_image_hook_logs_mid_epoch_only_on_change():
    dataset = _Dataset(100)
    runner = _runner(dataset, iter=999)
    hook = BadImageLoggerHook(interval=1000)
    hook.after_train_iter(runner, 0)  # iteration 1000: first report
    hook.after_train_iter(runner, 0)  # unchanged: silent
    dataset.bad = [5]
    hook.after_train_iter(runner, 0)
    assert [ln.split(': ')[1] for ln in runner.logger.lines
            ] == ['0 of 100 (0.000%)', '1 of 100 (1.000%)']


def test_bad_image_hook_stops_over_max_bad_fraction():
    runner = _runner(_Dataset(100, bad=range(6)))  # 6 > 5% of 100
    with pytest.raises(
            RuntimeError,
            match='6 of 100 images could not be '
            'decoded, more than max_bad_fraction=0.05'):
        BadImageLoggerHook().after_train_epoch(runner)


def test_finite_loss_hook_names_the_term_and_iteration():
    hook = FiniteLossHook()
    runner = SimpleNamespace(iter=6, epoch=1)
    outputs = dict(
        loss=torch.tensor(float('nan')),
        loss_global=torch.tensor(0.5),
        loss_relation=torch.tensor(float('inf')),
        accuracy=torch.tensor(float('nan')))  # not a loss term: ignored
    with pytest.raises(FloatingPointError) as error:
        hook.after_train_iter(runner, 0, outputs=outputs)
    assert str(error.value).startswith(
        'loss_relation is inf at iteration 7 (epoch 2): lower the')
    hook.after_train_iter(  # finite: nothing
        runner, 0, outputs=dict(loss=torch.tensor(1.0)))


def _draws(results):
    """A transform drawing from the three global generators."""
    results['draws'] = (random.random(), float(np.random.rand()),
                        float(torch.rand(1)))
    return results


@pytest.fixture
def lup(tmp_path):
    """A LUPersonDataset of 6 images (index 2 undecodable) whose pipeline
    draws from python's, numpy's and torch's global generators."""
    write_person_images(str(tmp_path / 'images'), 6)
    (tmp_path / 'images' / '0002.jpg').write_bytes(b'broken')
    return LUPersonDataset(
        data_root=str(tmp_path),
        data_prefix=dict(img_path='images/'),
        pipeline=[dict(type='LoadPersonImage'), _draws],
        max_bad_fraction=0.5)


def test_random_stream_is_keyed_and_leaves_the_global_state():
    torch.manual_seed(1)
    before = torch.get_rng_state(), np.random.get_state()[1].copy()
    with random_stream(3, 0, 5):
        first = _draws({})['draws']
    assert torch.equal(torch.get_rng_state(), before[0])
    assert np.array_equal(np.random.get_state()[1], before[1])
    np.random.rand(), random.random(), torch.rand(1)  # other draws between
    with random_stream(3, 0, 5):
        assert _draws({})['draws'] == first
    with random_stream(3, 1, 5):
        assert _draws({})['draws'] != first


def test_dataset_stream_same_in_any_worker_and_after_restart(lup):
    """Each sample's draws are a function of (seed, epoch, index): loaded
    by 2 persistent workers over two epochs, they equal the draws of the
    main process; the bad image's replacement is drawn from the stream."""
    from torch.utils.data import DataLoader
    expected = {}
    for epoch in (0, 1):
        lup.set_random_stream(11, epoch)
        expected[epoch] = [lup[i]['draws'] for i in range(6)]
        assert [lup[i]['draws'] for i in range(6)] == expected[epoch]
    assert expected[0] != expected[1]
    draws = [d for epoch in expected.values() for d in epoch]
    # three unrelated generators
    assert all(len(set(d)) == 3 for d in draws)
    assert lup.num_bad_images == 1  # met 4 times, counted once
    assert lup.bad_image_indices().tolist() == [2]

    loader = DataLoader(
        lup,
        batch_size=None,
        num_workers=2,
        persistent_workers=True,
        collate_fn=lambda x: x)
    for epoch in (0, 1):
        lup.set_random_stream(11, epoch)  # before the epoch's iterator
        assert [d['draws'] for d in loader] == expected[epoch]
    lup.set_random_stream(None)
    assert lup[0]['draws'] != expected[0][0]


def test_randomness_hook_seeds_each_iteration_and_the_dataset(lup):
    from mmengine.runner import EpochBasedTrainLoop
    hook = ResumableRandomnessHook()
    loop = EpochBasedTrainLoop.__new__(EpochBasedTrainLoop)
    runner = SimpleNamespace(
        seed=5,
        iter=12,
        epoch=3,
        train_loop=loop,
        train_dataloader=SimpleNamespace(dataset=lup))
    hook.before_train_epoch(runner)
    hook.before_train_iter(runner, 0)
    first = _draws({})['draws'], lup[0]['draws']
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    hook.before_train_epoch(runner)
    hook.before_train_iter(runner, 0)
    assert (_draws({})['draws'], lup[0]['draws']) == first
    runner.iter = 13
    hook.before_train_iter(runner, 0)
    assert _draws({})['draws'] != first[0]
