from mmengine.hooks import Hook

from mmdpal.engine.schedulers.schedule_check import clipped_schedulers
from mmdpal.registry import HOOKS


@HOOKS.register_module()
class ScheduleCheckHook(Hook):
    """Before training, one warning line for each parameter scheduler that
    the train loop would clip (:func:`clipped_schedulers`): an epoch-based
    scheduler in an iteration loop, an iteration scheduler the Runner ended
    at ``max_epochs``, an ``end`` beyond the run.

    ``tools/train.py`` registers it for every config; elsewhere add
    ``custom_hooks = [dict(type='mmdpal.ScheduleCheckHook')]``.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        if runner.param_schedulers is None:
            return
        for line in clipped_schedulers(
                runner.cfg.get('param_scheduler'), runner.param_schedulers,
                runner.train_loop):
            runner.logger.warning(line)
