"""The authors' EMA of the student and the decoder, for mmengine's EMAHook."""
from copy import deepcopy
from typing import Optional

import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from mmpretrain.models.utils import CosineEMA

from mmdpal.registry import MODELS
from mmdpal.utils.options import check_choice


@MODELS.register_module()
class StudentCosineEMA(CosineEMA):
    """mmpretrain's :class:`CosineEMA` of a DPAL model's student and
    decoder, for ``dict(type='EMAHook', ema_type='StudentCosineEMA')``.

    As the authors' code: after every step, ``ema = m * ema + (1 - m) *
    param`` with ``m`` going from ``1 - momentum`` to ``1 - end_momentum``
    on a cosine over all training iterations (0.996 -> 1 with the
    defaults). Unlike a plain ``CosineEMA`` of the whole model, the frozen
    teacher is neither copied nor averaged: the averaged copy shares it.

    Which point of the cosine a step takes is ``momentum_index``:
    ``'iter'`` (default, the schedule as stated) the iteration of the run;
    ``'iter_in_epoch'`` the iteration within the epoch, as their script
    indexes it (``momentum_schedule[data_iter_step]``, ``data_iter_step``
    restarting at 0 every epoch): every epoch replays the first
    1/max_epochs of the cosine, so ``m`` stays near its start (0.996 to
    0.99600025 over 200 epochs of 488 iterations) instead of reaching 1.
    Either way the average starts from the weights after the first step
    (mmengine's EMA); theirs starts from the initial weights, whose share
    0.996^k is gone after a few epochs.

    Args:
        model (nn.Module): The DPAL model (a ``teacher`` child is shared).
        momentum (float): Weight of the new parameters at the first step,
            mmengine's convention (1 - the authors' 0.996). Defaults to
            0.004.
        end_momentum (float): The same at the last step. Defaults to 0.
        interval (int): Update every ``interval`` steps. Defaults to 1.
        device (torch.device, optional): Where the average lives.
        update_buffers (bool): Average buffers too. Defaults to False.
        momentum_index (str): ``'iter'`` or ``'iter_in_epoch'`` (the
            authors'), see above. Defaults to ``'iter'``.
    """

    def __init__(self,
                 model: nn.Module,
                 momentum: float = 0.004,
                 end_momentum: float = 0.,
                 interval: int = 1,
                 device: Optional[torch.device] = None,
                 update_buffers: bool = False,
                 momentum_index: str = 'iter') -> None:
        check_choice('momentum_index', momentum_index,
                     ('iter', 'iter_in_epoch'))
        nn.Module.__init__(self)
        self.momentum_index = momentum_index
        teacher = getattr(model, 'teacher', None)
        memo = {} if teacher is None else {id(teacher): teacher}
        self.module = deepcopy(model, memo).requires_grad_(False)
        if device is not None:
            self.module = self.module.to(device)
        self.momentum = momentum
        self.end_momentum = end_momentum
        self.interval = interval
        self.register_buffer('steps',
                             torch.tensor(0, dtype=torch.long, device=device))
        self.update_buffers = update_buffers
        averaged = self.module.state_dict() if update_buffers else dict(
            self.module.named_parameters())
        self.avg_parameters = {
            k: v
            for k, v in averaged.items() if not k.startswith('teacher.')
        }

    def avg_func(self, averaged_param: torch.Tensor,
                 source_param: torch.Tensor, steps) -> None:
        """The cosine EMA step at the schedule's index of this step."""
        if self.momentum_index == 'iter_in_epoch':
            # an epoch-based loop's epoch length (mmdpal.ScheduleCheckHook
            # refuses 'iter_in_epoch' in an iteration loop, which reports
            # max_epochs=1)
            hub = MessageHub.get_current_instance()
            per_epoch = int(hub.get_info('max_iters')) // max(
                int(hub.get_info('max_epochs') or 1), 1)
            steps = steps % max(per_epoch, 1)
        super().avg_func(averaged_param, source_param, steps)
