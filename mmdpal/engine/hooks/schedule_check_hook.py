from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop

from mmdpal.engine.schedulers.schedule_check import clipped_schedulers
from mmdpal.registry import HOOKS


def check_ema_momentum_index(hooks, train_loop) -> None:
    """Refuse an EMA momentum indexed within the epoch in an iteration
    loop (one line naming the key)."""
    if not isinstance(train_loop, IterBasedTrainLoop):
        return
    for hook in hooks:
        ema = getattr(hook, 'ema_model', None)
        if getattr(ema, 'momentum_index', None) == 'iter_in_epoch':
            raise ValueError(
                "StudentCosineEMA(momentum_index='iter_in_epoch') needs an "
                'EpochBasedTrainLoop: an IterBasedTrainLoop has no epochs '
                '(mmengine reports max_epochs=1), so the momentum would '
                "follow the run's iteration: set the EMAHook's "
                "momentum_index='iter' or train_cfg=dict(by_epoch=True, "
                'max_epochs=...)')


@HOOKS.register_module()
class ScheduleCheckHook(Hook):
    """Before training, one warning line for each parameter scheduler that
    the train loop would clip (:func:`clipped_schedulers`): an epoch-based
    scheduler in an iteration loop, an iteration scheduler the Runner ended
    at ``max_epochs``, an ``end`` beyond the run.

    It also refuses, in one line, an EMA whose momentum is indexed within
    the epoch (``StudentCosineEMA(momentum_index='iter_in_epoch')``, the
    official DPAL config's) in an ``IterBasedTrainLoop``: mmengine reports
    ``max_epochs=1`` there, so the index would silently become the run's
    iteration (:func:`check_ema_momentum_index`).

    ``tools/train.py`` registers it for every config; elsewhere add
    ``custom_hooks = [dict(type='mmdpal.ScheduleCheckHook')]``.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        check_ema_momentum_index(runner.hooks, runner.train_loop)
        if runner.param_schedulers is None:
            return
        for line in clipped_schedulers(
                runner.cfg.get('param_scheduler'), runner.param_schedulers,
                runner.train_loop):
            runner.logger.warning(line)
