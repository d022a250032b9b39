"""mmdpal's engine parts: the CPU/GPU bf16 optimizer wrapper and the hooks."""
from types import SimpleNamespace

import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import mmdpal  # noqa: F401
from mmdpal.engine import BadImageLoggerHook


def test_bf16_autocast_wrapper_runs_forward_in_bf16_keeps_fp32_state():
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
    with wrapper.optim_context(model):
        out = model(x)
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().pow(2).mean())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert any(not torch.equal(a, b)
               for a, b in zip(before, model.parameters()))
    # outside the context the model is fp32 again
    assert model(x).dtype == torch.float32


class _Logger:

    def __init__(self):
        self.lines = []

    def info(self, msg):
        self.lines.append(msg)


def test_bad_image_hook_logs_the_count():
    dataset = type('DS', (list, ), {'num_bad_images': 3})([0] * 200)
    runner = SimpleNamespace(
        train_dataloader=SimpleNamespace(dataset=dataset), logger=_Logger())
    hook = BadImageLoggerHook()
    hook.after_train_epoch(runner)
    assert runner.logger.lines == [
        'undecodable training images skipped so far: 3 of 200 (1.500%)'
    ]


def test_bad_image_hook_logs_mid_epoch_only_on_change():
    dataset = type('DS', (list, ), {'num_bad_images': 0})([0] * 10)
    runner = SimpleNamespace(
        train_dataloader=SimpleNamespace(dataset=dataset),
        logger=_Logger(),
        iter=999)
    hook = BadImageLoggerHook(interval=1000)
    hook.after_train_iter(runner, 0)  # iteration 1000: first report
    hook.after_train_iter(runner, 0)  # unchanged: silent
    dataset.num_bad_images = 1
    hook.after_train_iter(runner, 0)
    assert [ln.split(': ')[1] for ln in runner.logger.lines
            ] == ['0 of 10 (0.000%)', '1 of 10 (10.000%)']
