import math
from typing import Optional, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdpal.registry import HOOKS


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop training when any loss term is NaN or inf, naming the term.

    It reads the loss values that mmengine already moved to the host for
    logging, so it adds no device synchronisation.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        for name, value in (outputs or {}).items():
            if not name.startswith('loss'):
                continue
            value = float(value)
            if not math.isfinite(value):
                raise FloatingPointError(
                    f'{name} is {value} at iteration {runner.iter + 1} '
                    f'(epoch {runner.epoch + 1}): lower the learning rate, '
                    'enable gradient clipping (optim_wrapper.clip_grad) or '
                    'check the data of this batch')


@HOOKS.register_module()
class BadImageLoggerHook(Hook):
    """Log how many training images could not be decoded, every epoch (and
    every ``interval`` iterations for iteration-based training)."""

    def __init__(self, interval: int = 1000):
        self.interval = interval
        self._last_logged = None

    def _log(self, runner, only_if_changed: bool) -> None:
        dataset = runner.train_dataloader.dataset
        num_bad = getattr(dataset, 'num_bad_images', None)
        if num_bad is None or (only_if_changed
                               and num_bad == self._last_logged):
            return
        runner.logger.info(
            f'undecodable training images skipped so far: {num_bad} of '
            f'{len(dataset)} ({100 * num_bad / max(len(dataset), 1):.3f}%)')
        self._last_logged = num_bad

    def after_train_epoch(self, runner) -> None:
        self._log(runner, only_if_changed=False)

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        if self.every_n_train_iters(runner, self.interval):
            self._log(runner, only_if_changed=True)


@HOOKS.register_module()
class RouterLossScheduleHook(Hook):
    """Step the decoder's ``router_loss_weight`` by epoch, as the authors'
    code does (0.1 for the first 20 epochs, then 0.01).

    Args:
        milestones (sequence): ``[(epoch, weight), ...]``: from that (0-based)
            epoch on, the weight is used.
    """

    def __init__(self, milestones: Sequence[Tuple[int, float]]):
        self.milestones = sorted((int(e), float(w)) for e, w in milestones)

    def before_train_epoch(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        weight = None
        for epoch, w in self.milestones:
            if runner.epoch >= epoch:
                weight = w
        if weight is not None:
            model.decoder.router_loss_weight = weight
