import torch
import torch.nn as nn

from mmdpal.registry import MODELS


@MODELS.register_module()
class LocalAlignLoss(nn.Module):
    """Local-level alignment, Eq. 5 (with the masking of Eq. 2) of DPAL.

    .. math::
        \\ell_l = \\mathrm{MSE}(M_{shape} \\cdot \\widetilde{F}_s^l,
                               M_{shape} \\cdot F_t^l)

    i.e. the mean over all B x L x C elements of (M (s - t))^2: tokens the
    teacher's shape mask ignores (M = 0) contribute nothing.

    Args:
        loss_weight (float): lambda_l of Eq. 7. Defaults to 1.
    """

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, student_patch: torch.Tensor, teacher_patch: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            student_patch (Tensor): Decoded student patch tokens (B, L, C).
            teacher_patch (Tensor): Teacher patch tokens (B, L, C).
            mask (Tensor): M_shape (B, L) in [0, 1].
        """
        diff = mask.float().unsqueeze(-1) * (
            student_patch.float() - teacher_patch.float())
        return self.loss_weight * diff.pow(2).mean()
