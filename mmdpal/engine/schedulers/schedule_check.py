"""Parameter schedulers that the train loop would clip: found when they are
built, one line each, instead of a learning rate that silently stays
constant."""
from typing import List, Sequence, Union

from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmengine.runner import IterBasedTrainLoop


def clipped_schedulers(scheduler_cfgs: Union[dict, Sequence[dict], None],
                       schedulers: Union[dict, Sequence[_ParamScheduler]],
                       train_loop) -> List[str]:
    """One line per scheduler that the loop would clip, naming the
    scheduler and the config key to set.

    Three cases, checked on the schedulers as mmengine's Runner built them:

    - an epoch-based scheduler (``by_epoch=True``, not converted) in an
      ``IterBasedTrainLoop``: the loop has one epoch, so it never steps;
    - an iteration-based scheduler whose config gives neither ``end`` nor
      ``by_epoch`` (e.g. ``mmdpal.TimmCosineLR``): the Runner reads the
      missing ``by_epoch`` as True and ends it at ``max_epochs``
      iterations;
    - an ``end`` beyond the run (``max_epochs`` or ``max_iters``): the curve
      is cut before it finishes.

    Args:
        scheduler_cfgs (dict | list[dict] | None): The config's
            ``param_scheduler`` (one dict per optimizer for several).
        schedulers (list[_ParamScheduler] | dict): ``runner.param_schedulers``
            after ``Runner.build_param_scheduler``.
        train_loop: The built train loop (``runner.train_loop``).

    Returns:
        list[str]: The problems, empty when none.
    """
    if isinstance(schedulers, dict):
        cfgs = scheduler_cfgs or {}
        return [
            f'{key}: {line}' for key, group in schedulers.items()
            for line in clipped_schedulers(cfgs.get(key), group, train_loop)
        ]
    if scheduler_cfgs is None:
        scheduler_cfgs = []
    elif isinstance(scheduler_cfgs, dict):
        scheduler_cfgs = [scheduler_cfgs]
    scheduler_cfgs = list(scheduler_cfgs) + [{}] * len(schedulers)
    iter_loop = isinstance(train_loop, IterBasedTrainLoop)
    lines = []
    for i, (scheduler, cfg) in enumerate(zip(schedulers, scheduler_cfgs)):
        cfg = cfg if isinstance(cfg, dict) else {}
        name = f'param_scheduler[{i}] ({type(scheduler).__name__})'
        if iter_loop and scheduler.by_epoch:
            lines.append(
                f'{name} steps per epoch but the train loop is an '
                'IterBasedTrainLoop (one epoch), so it would keep its first '
                'value: set by_epoch=False with begin/end in iterations')
        elif (not scheduler.by_epoch and 'end' not in cfg
              and 'by_epoch' not in cfg
              and not cfg.get('convert_to_iter_based', False)):
            lines.append(
                f'{name} steps per iteration but its config has no by_epoch, '
                'so the Runner ended it at max_epochs '
                f'({train_loop.max_epochs}) iterations: set by_epoch=False '
                '(or end) in its config')
        else:
            run = (
                train_loop.max_epochs
                if scheduler.by_epoch else train_loop.max_iters)
            unit = 'epoch' if scheduler.by_epoch else 'iteration'
            if run < scheduler.end < INF:
                units = unit if run == 1 else unit + 's'
                lines.append(
                    f'{name} ends at {unit} {scheduler.end} but the run has '
                    f'{run} {units}, so its curve is cut: set its end (and '
                    'T_max, where it has one) within the run, or lengthen '
                    'train_cfg')
    return lines
