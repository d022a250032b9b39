"""timm's warm-up + cosine learning rate, as the authors' ReID trainer uses
it."""
import math

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import _ParamScheduler

from mmdpal.registry import PARAM_SCHEDULERS


def timm_cosine_lr(t: int, base_lr: float, warmup_lr: float, eta_min: float,
                   warmup_epochs: int, max_epochs: int) -> float:
    """The learning rate of (0-based) epoch ``t`` under timm's
    ``CosineLRScheduler`` as the authors' ReID trainer builds it
    (Human-centric-Vision-Perception, I2I-ReID/solver/scheduler_factory.py
    and cosine_lr.py; stepped once per epoch with ``scheduler.step(epoch)``
    in processor/processor.py):

    - ``t < warmup_epochs``: linear from ``warmup_lr`` (the same absolute
      value for every parameter group) towards ``base_lr``;
    - after: ``eta_min + (base_lr - eta_min) (1 + cos(pi t / max_epochs))
      / 2``, the cosine counted from epoch 0, not from the end of the
      warm-up (``warmup_prefix=False``): it starts at cos(pi 20 / 120).
    """
    if t < warmup_epochs:
        return warmup_lr + t * (base_lr - warmup_lr) / warmup_epochs
    cosine = 1 + math.cos(math.pi * t / max_epochs)
    return eta_min + 0.5 * (base_lr - eta_min) * cosine


@PARAM_SCHEDULERS.register_module()
class TimmCosineLR(LRSchedulerMixin, _ParamScheduler):
    """:func:`timm_cosine_lr` of each parameter group (its own initial lr as
    ``base_lr``: the bias groups' doubled lr too), constant within an epoch,
    for iteration-based loops (``by_epoch=False``) whose epochs are
    ``epoch_iters`` iterations long.

    Args:
        optimizer: Wrapped optimizer.
        epoch_iters (int): Iterations per epoch.
        warmup_epochs (int): ``SOLVER.WARMUP_EPOCHS``.
        max_epochs (int): ``SOLVER.MAX_EPOCHS`` (timm's ``t_initial``).
        warmup_lr (float): Absolute lr of the first epoch (theirs: 0.01 x
            ``SOLVER.BASE_LR``).
        eta_min (float): Absolute floor of the cosine (theirs: 0.002 x
            ``SOLVER.BASE_LR``).
        by_epoch (bool): Must be False, and be written in the config: the
            Runner reads a missing ``by_epoch`` as True and then ends the
            scheduler at ``max_epochs`` (1 in an ``IterBasedTrainLoop``),
            which keeps the lr at its first value.
        begin, end, last_step, verbose: As mmengine's schedulers, in
            iterations.
    """

    def __init__(self,
                 optimizer,
                 epoch_iters: int,
                 warmup_epochs: int,
                 max_epochs: int,
                 warmup_lr: float,
                 eta_min: float,
                 begin: int = 0,
                 end: int = int(1e9),
                 last_step: int = -1,
                 by_epoch: bool = False,
                 verbose: bool = False):
        if by_epoch:
            raise ValueError(
                'TimmCosineLR steps per iteration (epoch_iters iterations per '
                'epoch): set by_epoch=False, with begin/end in iterations')
        self.epoch_iters = epoch_iters
        self.warmup_epochs = warmup_epochs
        self.max_epochs = max_epochs
        self.warmup_lr = warmup_lr
        self.eta_min = eta_min
        super().__init__(
            optimizer,
            begin=begin,
            end=end,
            last_step=last_step,
            by_epoch=False,
            verbose=verbose)

    def _get_value(self):
        t = self.last_step // self.epoch_iters
        return [
            timm_cosine_lr(t, base, self.warmup_lr, self.eta_min,
                           self.warmup_epochs, self.max_epochs)
            for base in self.base_values
        ]
