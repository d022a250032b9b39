"""Binary cross-entropy weighted by the attributes' positive ratios."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdpal.registry import MODELS


def positive_ratio_weights(targets: torch.Tensor,
                           pos_ratio: torch.Tensor) -> torch.Tensor:
    """The weight of each (image, attribute) term (Li et al., TIP 2020, as
    the authors' PAR code computes it: attribute_recognition/tools/
    function.py ``ratio2weight``): ``exp(1 - r_j)`` for a positive label,
    ``exp(r_j)`` for a negative one, ``r_j`` the fraction of training images
    with attribute ``j``.

    Args:
        targets (Tensor): (B, A) 0/1 labels.
        pos_ratio (Tensor): (A, ) positive ratios.
    """
    return torch.exp(targets * (1 - pos_ratio) + (1 - targets) * pos_ratio)


@MODELS.register_module()
class PositiveRatioBCELoss(nn.Module):
    """The attribute loss of the authors' PAR trainer (attribute_recognition/
    losses/bceloss.py with ``LOSS.SAMPLE_WEIGHT: 'weight'``): binary
    cross-entropy on the logits, each term weighted by
    :func:`positive_ratio_weights`, summed over the attributes and averaged
    over the images (``size_sum``).

    The ratios are those of the training split; ``mmdpal.PositiveRatioHook``
    computes them before training and stores them in the ``pos_ratio``
    buffer (saved with the model, so a checkpoint tests with its own).

    Args:
        num_classes (int): Number of attributes.
        loss_weight (float): Defaults to 1.
    """

    def __init__(self, num_classes: int, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight
        self.register_buffer('pos_ratio',
                             torch.full((num_classes, ), float('nan')))

    def forward(self,
                logits: torch.Tensor,
                targets: torch.Tensor,
                avg_factor=None,
                **kwargs) -> torch.Tensor:
        """
        Args:
            logits (Tensor): (B, A) scores before the sigmoid.
            targets (Tensor): (B, A) 0/1 labels (mmpretrain's multi-label
                heads pass the one-hot ``gt_score``).
            avg_factor: Ignored: the loss is averaged over the B images.
        """
        if torch.isnan(self.pos_ratio).any():
            raise RuntimeError(
                'PositiveRatioBCELoss has no positive ratios: add '
                "custom_hooks=[dict(type='mmdpal.PositiveRatioHook')] to the "
                'config (it computes them from the training set)')
        targets = targets.to(logits.dtype)
        weights = positive_ratio_weights(targets, self.pos_ratio)
        loss = F.binary_cross_entropy_with_logits(
            logits, targets, reduction='none') * weights
        return self.loss_weight * loss.sum(1).mean()
