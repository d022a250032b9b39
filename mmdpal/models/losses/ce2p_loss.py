"""The parsing losses of the authors' LIP trainer (SCHP's CriterionAll)."""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdpal.registry import MODELS

_UP = dict(mode='bilinear', align_corners=True)


def parsing_edges(labels: torch.Tensor,
                  ignore_index: int = 255) -> torch.Tensor:
    """The edge map of parsing labels, as SCHP generates its edge targets
    (HumanParsing/datasets/target_generation.py ``generate_edge_tensor``):
    a pixel is on an edge where its label differs from its lower, right,
    lower-right or lower-left neighbour (neither being ``ignore_index``),
    marked on the pixel of each pair that theirs marks; the map is then
    dilated by a 3x3 square (their ``edge_width=3``).

    Args:
        labels (Tensor): (B, H, W) class indices.

    Returns:
        Tensor: (B, H, W) long, 1 on edges, 0 elsewhere (ignored pixels
        included).
    """
    lab = labels
    valid = lab != ignore_index
    edge = torch.zeros(lab.shape, dtype=torch.float, device=lab.device)

    def mark(dst, a, b, va, vb):
        dst[(a != b) & va & vb] = 1

    # down: pixel (i, j) vs (i - 1, j), marked at i
    mark(edge[:, 1:, :], lab[:, 1:, :], lab[:, :-1, :], valid[:, 1:, :],
         valid[:, :-1, :])
    # right: (i, j) vs (i, j + 1), marked at j
    mark(edge[:, :, :-1], lab[:, :, :-1], lab[:, :, 1:], valid[:, :, :-1],
         valid[:, :, 1:])
    # (i, j) vs (i + 1, j + 1), marked at (i, j)
    mark(edge[:, :-1, :-1], lab[:, :-1, :-1], lab[:, 1:, 1:],
         valid[:, :-1, :-1], valid[:, 1:, 1:])
    # (i, j + 1) vs (i + 1, j), marked at (i, j + 1)
    mark(edge[:, :-1, 1:], lab[:, :-1, 1:], lab[:, 1:, :-1], valid[:, :-1, 1:],
         valid[:, 1:, :-1])
    kernel = edge.new_ones(1, 1, 3, 3)
    edge = F.conv2d(edge[:, None], kernel, padding=1)[:, 0]
    return (edge != 0).long()


def soft_target_kl(logits: torch.Tensor, target_logits: torch.Tensor,
                   labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """SCHP's ``KLDivergenceLoss`` (T = 1): KL(softmax(target_logits) ||
    softmax(logits)) summed over the classes, averaged over the pixels whose
    label is not ``ignore_index`` (``reduction='batchmean'`` of the
    flattened valid pixels)."""
    valid = (labels != ignore_index).reshape(-1)
    C = logits.shape[1]
    log_p = F.log_softmax(logits, 1).permute(0, 2, 3, 1).reshape(-1, C)
    q = F.softmax(target_logits, 1).permute(0, 2, 3, 1).reshape(-1, C)
    return F.kl_div(log_p[valid], q[valid], reduction='batchmean')


def one_hot_map(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, H, W) indices -> (B, num_classes, H, W) float one-hot."""
    return F.one_hot(labels, num_classes).permute(0, 3, 1, 2).float()


@MODELS.register_module()
class CE2PLoss(nn.Module):
    """SCHP's ``CriterionAll`` as the authors train LIP (HumanParsing/utils/
    criterion.py; train.py: lambda_s = lambda_e = 1, lambda_c = 0.1), every
    prediction up-sampled to the label size first:

    - each parsing output (the decoder's and the fused one): 0.5 x
      Lovasz-softmax (mmseg's ``LovaszLoss``: classes present, whole batch,
      ignore 255) + 0.5 x cross-entropy (ignore 255);
    - the edge output: cross-entropy against :func:`parsing_edges`, the
      classes weighted by the other class's share of the batch's pixels
      (edge weight = #non-edge / #all, non-edge weight = #edge / #all).

    In self-correction cycles (``soft`` given, n >= 1 cycles done), the
    cross-entropies become :func:`soft_target_kl` towards
    ``(1 - 1/(n+1)) x SCHP logits + 1/(n+1) x one-hot label``, mixing
    logits with a one-hot and applying the softmax to the mixture, as
    theirs (``moving_average(soft_pred, to_one_hot(label))``). Their
    ``to_one_hot`` also sets the ignored pixels of the label to 0 in place,
    so from the first parsing output's KL on, every term (the second
    output's Lovasz included) counts them as background: reproduced.

    Their consistency term (lambda_c) is left out: it compares the
    argmax-generated edges with the argmax edge prediction on the pixels
    where both are 1, so it is 0 with no gradient (NaN when no pixel is).

    Args:
        num_classes (int): Parsing classes.
        ignore_index (int): Defaults to 255.
        loss_lovasz (dict): The Lovasz term (weight 0.5 per output).
    """

    def __init__(self,
                 num_classes: int = 20,
                 ignore_index: int = 255,
                 loss_lovasz: dict = dict(
                     type='mmseg.LovaszLoss',
                     loss_type='multi_class',
                     classes='present',
                     per_image=False,
                     reduction='none',
                     loss_weight=0.5)):
        super().__init__()
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.lovasz = MODELS.build(loss_lovasz)

    def forward(
            self,
            parsings: List[torch.Tensor],
            edge: torch.Tensor,
            labels: torch.Tensor,
            soft: Optional[Tuple[torch.Tensor, torch.Tensor,
                                 int]] = None) -> dict:
        """
        Args:
            parsings: The decoder's and the fused logits (B, K, h, w).
            edge (Tensor): Edge logits (B, 2, h, w).
            labels (Tensor): (B, H, W) parsing labels.
            soft: ``(SCHP fused logits, SCHP edge logits, n cycles)`` in
                self-correction cycles, else None.
        """
        size = labels.shape[1:]
        ignore = self.ignore_index
        edges = parsing_edges(labels, ignore_index=ignore)
        num_pos = (edges == 1).sum().float()
        num_neg = (edges == 0).sum().float()
        edge_weight = torch.stack([num_pos, num_neg]) / (num_pos + num_neg)
        losses = dict(loss_lovasz=0., loss_ce=0.)
        for pred in parsings:
            pred = F.interpolate(pred, size=size, **_UP)
            losses['loss_lovasz'] += self.lovasz(
                pred, labels, ignore_index=ignore)
            if soft is None:
                losses['loss_ce'] += 0.5 * F.cross_entropy(
                    pred, labels, ignore_index=ignore)
                continue
            alpha = 1.0 / (soft[2] + 1)
            labels = labels.masked_fill(labels == ignore, 0)  # their quirk
            target = (1 - alpha) * F.interpolate(
                soft[0], size=size, **_UP) + alpha * one_hot_map(
                    labels, self.num_classes)
            losses['loss_ce'] += 0.5 * soft_target_kl(pred, target, labels,
                                                      ignore)
        edge = F.interpolate(edge, size=size, **_UP)
        if soft is None:
            losses['loss_edge'] = F.cross_entropy(
                edge, edges, edge_weight, ignore_index=ignore)
        else:
            target = (1 - alpha) * F.interpolate(
                soft[1], size=size, **_UP) + alpha * one_hot_map(edges, 2)
            losses['loss_edge'] = soft_target_kl(edge, target, labels, ignore)
        return losses
