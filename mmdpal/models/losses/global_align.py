from typing import List, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdpal.registry import MODELS


@MODELS.register_module()
class GlobalAlignLoss(nn.Module):
    """Global-level alignment, Eq. 4 of DPAL.

    .. math::
        \\ell_g = \\frac{1}{M} \\sum_{i=1}^{M}
            \\mathrm{MSE}(\\widetilde{F}_{si}^g, F_t^g)

    the decoded student class token of each of the M views of the
    single-person image against the teacher class token of the global view
    (as the authors' code does; the paper writes ||.||_2, realised as the
    mean squared error).

    Args:
        loss_weight (float): lambda_g of Eq. 7. Defaults to 1.
    """

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, student_cls: Union[List[torch.Tensor], torch.Tensor],
                teacher_cls: torch.Tensor) -> torch.Tensor:
        """
        Args:
            student_cls: M tensors (B, C), or one tensor (M, B, C).
            teacher_cls (Tensor): (B, C).
        """
        if isinstance(student_cls, (list, tuple)):
            student_cls = torch.stack(list(student_cls))
        M = student_cls.shape[0]
        target = teacher_cls.float().unsqueeze(0).expand(M, -1, -1)
        loss = F.mse_loss(student_cls.float(), target)  # = mean over views
        return self.loss_weight * loss
