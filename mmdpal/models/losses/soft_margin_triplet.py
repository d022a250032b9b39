"""Batch-hard triplet loss with a soft margin (the authors' ReID trainer)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdpal.registry import MODELS


@MODELS.register_module()
class SoftMarginTripletLoss(nn.Module):
    """Batch-hard triplet loss with a soft margin, as the authors fine-tune
    ReID (Human-centric-Vision-Perception, I2I-ReID/loss/triplet_loss.py,
    ``TripletLoss(margin=None)``, selected by ``MODEL.NO_MARGIN: True`` of
    their dpal_vit_tiny.yml):

    .. math::
        \\ell = \\frac{1}{B} \\sum_i \\log(1 + \\exp(d^-_i - d^+_i))
        \\quad\\text{with } d^+_i = \\max_{j: y_j = y_i} d_{ij},\\;
        d^-_i = \\min_{j: y_j \\ne y_i} d_{ij}

    ``nn.SoftMarginLoss`` of ``d^- - d^+`` against 1, where mmdet's
    ``TripletLoss`` has a 0.3 hinge margin. ``d`` is the Euclidean distance
    of the raw embeddings (no L2 normalisation: ``SOLVER.TRP_L2`` False), its
    square clamped at 1e-12 before the square root, as theirs. The hardest
    positive of an anchor includes itself (distance ~1e-6), as theirs.

    Args:
        loss_weight (float): Defaults to 1 (``MODEL.TRIPLET_LOSS_WEIGHT``).
    """

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, feats: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        """
        Args:
            feats (Tensor): (B, C) embeddings.
            labels (Tensor): (B, ) identities; each needs another image of
                its identity and one of another identity in the batch.
        """
        sq = feats.pow(2).sum(1, keepdim=True)
        dist = (sq + sq.t() - 2 * feats @ feats.t()).clamp(min=1e-12).sqrt()
        same = labels[:, None] == labels[None, :]  # (B, B)
        hardest_pos = dist.masked_fill(~same, float('-inf')).amax(1)
        hardest_neg = dist.masked_fill(same, float('inf')).amin(1)
        # SoftMarginLoss(x, y=1) = mean(log(1 + exp(-x)))
        loss = F.softplus(-(hardest_neg - hardest_pos)).mean()
        return self.loss_weight * loss
