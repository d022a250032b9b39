import torch
import torch.nn as nn

from mmdpal.registry import MODELS


def token_relation(tokens: torch.Tensor) -> torch.Tensor:
    """Eq. 3: F^r = softmax(F F^T / sqrt(C)) row-wise, in log space.

    Args:
        tokens (Tensor): (B, L, C).

    Returns:
        Tensor: log F^r, (B, L, L).
    """
    t = tokens.float()
    return torch.log_softmax(t @ t.transpose(1, 2) / t.shape[-1]**0.5, dim=-1)


def relation_kl(teacher: torch.Tensor,
                log_student: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) of each row, (B, L): Eq. 6 before the mean.

    ``0 * log 0 = 0`` on either side, so one-hot teacher rows (and student
    rows that underflow where the teacher is 0) stay finite.
    """
    cross = torch.where(teacher > 0, teacher * log_student,
                        torch.zeros_like(teacher))
    return (torch.xlogy(teacher, teacher) - cross).sum(dim=-1)


@MODELS.register_module()
class RelationAlignLoss(nn.Module):
    """Relation-level alignment, Eq. 6 (student relation of Eq. 3) of DPAL.

    .. math::
        \\ell_r = KL(F_t^r \\| \\widetilde{F}_s^r), \\quad
        \\widetilde{F}_s^r = \\mathrm{softmax}(\\widetilde{F}_{s2}^l
            \\widetilde{F}_{s2}^{l\\top} / \\sqrt{C})

    KL summed over the last axis, averaged over the L rows and the batch.

    Args:
        loss_weight (float): lambda_r of Eq. 7. Defaults to 1.
    """

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, student_tokens: torch.Tensor,
                teacher_relation: torch.Tensor) -> torch.Tensor:
        """
        Args:
            student_tokens (Tensor): Decoded student tokens of the
                multi-person image (B, L, C): its patch tokens, or class
                token and patch tokens (``relation_tokens='all'``).
            teacher_relation (Tensor): F_t^r (B, L, L), rows sum to 1.
        """
        kl = relation_kl(teacher_relation.float(),
                         token_relation(student_tokens))
        return self.loss_weight * kl.mean()
