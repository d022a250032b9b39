"""The authors' EMA of the student and the decoder, for mmengine's EMAHook."""
from copy import deepcopy
from typing import Optional

import torch
import torch.nn as nn
from mmpretrain.models.utils import CosineEMA

from mmdpal.registry import MODELS


@MODELS.register_module()
class StudentCosineEMA(CosineEMA):
    """mmpretrain's :class:`CosineEMA` of a DPAL model's student and
    decoder, for ``dict(type='EMAHook', ema_type='StudentCosineEMA')``.

    As the authors' code: after every step, ``ema = m * ema + (1 - m) *
    param`` with ``m`` going from ``1 - momentum`` to ``1 - end_momentum``
    on a cosine over all training iterations (0.996 -> 1 with the
    defaults). Unlike a plain ``CosineEMA`` of the whole model, the frozen
    teacher is neither copied nor averaged: the averaged copy shares it.

    Args:
        model (nn.Module): The DPAL model (a ``teacher`` child is shared).
        momentum (float): Weight of the new parameters at the first step,
            mmengine's convention (1 - the authors' 0.996). Defaults to
            0.004.
        end_momentum (float): The same at the last step. Defaults to 0.
        interval (int): Update every ``interval`` steps. Defaults to 1.
        device (torch.device, optional): Where the average lives.
        update_buffers (bool): Average buffers too. Defaults to False.
    """

    def __init__(self,
                 model: nn.Module,
                 momentum: float = 0.004,
                 end_momentum: float = 0.,
                 interval: int = 1,
                 device: Optional[torch.device] = None,
                 update_buffers: bool = False) -> None:
        nn.Module.__init__(self)
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
