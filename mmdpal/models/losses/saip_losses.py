"""SAIP's objectives: cross-scale matching (Eq. 1), its attention term (the
authors' code only), cross-scale reconstruction (Eq. 2) and cross-scale
search (Eq. 3)."""
from typing import List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_reduce

from mmdpal.registry import MODELS
from mmdpal.utils.options import check_choice


@MODELS.register_module()
class CSMLoss(nn.Module):
    """Eq. 1, cross-scale matching, as DINO's cross-entropy.

    The teacher's outputs of the two global views are centred, sharpened
    (``teacher_temp``) and softmaxed; every student view's softmax
    (``student_temp``) is matched to each of them except the same global
    view: with 2 global and V views in all, 2 * V - 2 terms, averaged. The
    centre (a buffer) then moves towards the batch mean of the teacher
    outputs (``center_momentum``, mean over all ranks).

    Args:
        out_dims (int): K, the head's output width.
        teacher_temp (float): Defaults to 0.04.
        student_temp (float): Defaults to 0.1.
        center_momentum (float): Defaults to 0.9.
        loss_weight (float): Defaults to 1.
    """

    def __init__(self,
                 out_dims: int,
                 teacher_temp: float = 0.04,
                 student_temp: float = 0.1,
                 center_momentum: float = 0.9,
                 loss_weight: float = 1.):
        super().__init__()
        self.teacher_temp = teacher_temp
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.loss_weight = loss_weight
        self.register_buffer('center', torch.zeros(1, out_dims))

    def forward(self, student: List[torch.Tensor],
                teacher: List[torch.Tensor]) -> torch.Tensor:
        """
        Args:
            student (list[Tensor]): V tensors (B, K), the two global views
                first.
            teacher (list[Tensor]): 2 tensors (B, K), the global views.
        """
        t_all = torch.cat(teacher)  # (2B, K)
        targets = F.softmax(
            (t_all - self.center) / self.teacher_temp,
            dim=-1).detach().chunk(len(teacher))
        log_probs = [
            F.log_softmax(s / self.student_temp, dim=-1) for s in student
        ]
        loss, terms = 0., 0
        for i, target in enumerate(targets):
            for v, log_p in enumerate(log_probs):
                if v == i:  # same global view
                    continue
                loss = loss + torch.sum(-target * log_p, dim=-1).mean()
                terms += 1
        self.update_center(t_all.detach())
        return self.loss_weight * loss / terms

    @torch.no_grad()
    def update_center(self, teacher: torch.Tensor) -> None:
        batch_center = teacher.mean(dim=0, keepdim=True)  # (1, K)
        all_reduce(batch_center, op='mean')  # no-op on one process
        self.center.mul_(self.center_momentum).add_(batch_center *
                                                    (1 - self.center_momentum))


@MODELS.register_module()
class AttentionKLLoss(nn.Module):
    """The authors' extra term, not in the paper (main_pretrain.py
    ``CSMLoss.forward``): for each global view, KL(teacher || student) of the
    last block's attention maps, both the query-key map and the value-value
    map ``softmax(v v^T * scale)``, each summed over keys (``eps`` added to
    both, as theirs) and averaged over batch, heads and queries; the two maps
    add, the views average.

    Args:
        eps (float): Defaults to 1e-10.
        loss_weight (float): Defaults to 1.
    """

    def __init__(self, eps: float = 1e-10, loss_weight: float = 1.):
        super().__init__()
        self.eps = eps
        self.loss_weight = loss_weight

    def forward(self, student: Sequence[List[torch.Tensor]],
                teacher: Sequence[List[torch.Tensor]]) -> torch.Tensor:
        """
        Args:
            student, teacher (list): per global view, the maps
                ``[qk, vv]``, each (B, heads, N, N).
        """
        loss = 0.
        for s_maps, t_maps in zip(student, teacher):
            for s, t in zip(s_maps, t_maps):
                kl = F.kl_div(
                    (s + self.eps).log(),
                    t.detach() + self.eps,
                    reduction='none')  # (B, heads, N, N)
                loss = loss + kl.sum(-1).mean()
        return self.loss_weight * loss / len(student)


@MODELS.register_module()
class CSRLoss(nn.Module):
    """Eq. 2: squared error of the predicted pixels, per patch mean, averaged
    over the removed patches. With ``norm_pix`` each target patch is
    normalised by its own mean and (unbiased) variance (+1e-6), MAE's
    ``norm_pix_loss``, which SAIP's recipe turns on.

    Args:
        norm_pix (bool): Defaults to True.
        loss_weight (float): Defaults to 1.
    """

    def __init__(self, norm_pix: bool = True, loss_weight: float = 1.):
        super().__init__()
        self.norm_pix = norm_pix
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                removed: torch.Tensor) -> torch.Tensor:
        """
        Args:
            pred, target (Tensor): (B, L, p * p * 3) pixels per patch.
            removed (Tensor): (B, L), 1 on the patches to score.
        """
        if self.norm_pix:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.e-6)**.5
        loss = ((pred - target)**2).mean(dim=-1)  # (B, L)
        return self.loss_weight * (loss * removed).sum() / removed.sum()


@MODELS.register_module()
class CSSLoss(nn.Module):
    """Eq. 3: the predicted mask of a person against its box mask.

    ``mode='l2'`` (the paper): mean squared error between the sigmoid of
    the logits and the mask. ``mode='bce'`` (the authors' code,
    models_pretrain.py ``CSLViTWrapper.forward``): binary cross-entropy
    with logits, mean over all positions.

    Args:
        mode (str): 'l2' or 'bce'. Defaults to 'l2'.
        loss_weight (float): Defaults to 1.
    """

    def __init__(self, mode: str = 'l2', loss_weight: float = 1.):
        super().__init__()
        check_choice('CSSLoss.mode', mode, ('l2', 'bce'))
        self.mode = mode
        self.loss_weight = loss_weight

    def forward(self, logits: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """(B, h * w) logits and 0/1 mask -> scalar."""
        if self.mode == 'bce':
            loss = F.binary_cross_entropy_with_logits(logits, mask)
        else:
            loss = F.mse_loss(logits.sigmoid(), mask)
        return self.loss_weight * loss
