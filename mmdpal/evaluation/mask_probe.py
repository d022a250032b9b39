"""Person-mask probe: how well a frozen network's patch tokens say where
the person is.

A linear probe maps each patch token to the fraction of its patch covered
by the person: the mean training fraction of the patch's position plus a
ridge regression (closed form) on the token, fitted on training images; on
held-out images its map, upsampled to the mask's pixels and thresholded at
0.5, is compared with the person mask (intersection over union, one number
per image). Every number comes with a bootstrap confidence interval over
the held-out images, and two networks are compared on the same images
(paired bootstrap of the difference).

The image-free reference is the position prior alone: the mean training
mask of each patch, the same map for every image. A probe of tokens that
carry nothing about the image degenerates to it (tests: noise tokens, or
targets shuffled between images, give its score); a network whose tokens
locate the person beats it.
"""
from typing import Dict, NamedTuple, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F


class LinearProbe(NamedTuple):
    """A fitted probe: ``prior + (token - mean) / std @ weight`` for the
    patch at each position."""
    mean: torch.Tensor  # (L, C) of the training tokens at each position
    std: torch.Tensor  # (C, )
    weight: torch.Tensor  # (C, )
    prior: torch.Tensor  # (L, ) mean training target of each patch


def patch_fractions(masks: torch.Tensor, grid: Tuple[int,
                                                     int]) -> torch.Tensor:
    """The fraction of each patch covered by the mask.

    Args:
        masks (Tensor): (N, H, W) person masks in [0, 1].
        grid (tuple): The token grid (h, w); H and W are multiples of it.

    Returns:
        Tensor: (N, h * w) fractions, row-major as the ViT's tokens.
    """
    (H, W), (h, w) = masks.shape[-2:], grid
    if H % h or W % w:
        raise ValueError(f'mask size {H}x{W} is not a multiple of the token '
                         f'grid {h}x{w}')
    return F.adaptive_avg_pool2d(masks[:, None].double(), grid).flatten(1)


def fit_linear_probe(tokens: torch.Tensor,
                     targets: torch.Tensor,
                     ridge: float = 1e-3) -> LinearProbe:
    """The position prior plus a ridge regression of what is left of every
    patch's target on its token (both centred per position: least squares
    with one bias per position).

    Args:
        tokens (Tensor): (N, L, C) patch tokens of the training images.
        targets (Tensor): (N, L) e.g. :func:`patch_fractions`.
        ridge (float): L2 penalty on the weights of the standardised
            tokens, per training patch. Defaults to 1e-3.

    Returns:
        LinearProbe: The fitted probe.
    """
    # least squares with one bias per position: targets and tokens centred
    # on their mean at each position (the prior is the targets' mean)
    prior = targets.double().mean(0)  # (L, )
    mean = tokens.double().mean(0)  # (L, C)
    x = (tokens.double() - mean).reshape(-1, tokens.shape[-1])
    std = x.std(0).clamp_min(1e-6)
    x = x / std
    y = (targets.double() - prior).reshape(-1)
    gram = x.T @ x + ridge * x.shape[0] * torch.eye(x.shape[1], dtype=x.dtype)
    weight = torch.linalg.solve(gram, x.T @ y)
    return LinearProbe(mean, std, weight, prior)


def predict_fractions(probe: LinearProbe,
                      tokens: torch.Tensor) -> torch.Tensor:
    """(N, L, C) tokens -> (N, L) predicted patch fractions."""
    x = (tokens.double() - probe.mean) / probe.std
    return x @ probe.weight + probe.prior


def mask_iou(fractions: torch.Tensor,
             masks: torch.Tensor,
             grid: Tuple[int, int],
             threshold: float = 0.5) -> torch.Tensor:
    """Per-image IoU of the predicted person with the mask.

    The (h, w) map of predicted fractions is upsampled bilinearly to the
    mask's (H, W) and thresholded; the mask is thresholded at 0.5. An image
    with neither (empty union) scores 1.

    Args:
        fractions (Tensor): (N, h * w) predicted fractions.
        masks (Tensor): (N, H, W) masks in [0, 1].
        grid (tuple): (h, w).
        threshold (float): Defaults to 0.5.

    Returns:
        Tensor: (N, ) IoU in [0, 1].
    """
    maps = fractions.reshape(-1, 1, *grid).double()
    maps = F.interpolate(
        maps, size=masks.shape[-2:], mode='bilinear', align_corners=False)
    pred, true = maps[:, 0] > threshold, masks > 0.5
    inter = (pred & true).flatten(1).sum(1).double()
    union = (pred | true).flatten(1).sum(1).double()
    return torch.where(union > 0, inter / union.clamp_min(1),
                       torch.ones_like(union))


def position_prior(train_targets: torch.Tensor,
                   num_images: int) -> torch.Tensor:
    """The image-free prediction: the mean training target of each patch,
    repeated for ``num_images`` images, (num_images, L)."""
    return train_targets.double().mean(0, keepdim=True).expand(num_images, -1)


def bootstrap_ci(values: Sequence[float],
                 reps: int = 2000,
                 level: float = 0.95,
                 seed: int = 0) -> Dict[str, float]:
    """Mean of ``values`` with its percentile bootstrap interval.

    Returns:
        dict: ``mean``, ``low``, ``high`` and ``n``.
    """
    values = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(reps, len(values)))
    means = values[idx].mean(1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return dict(
        mean=float(values.mean()),
        low=float(low),
        high=float(high),
        n=len(values))


def paired_difference_ci(a: Sequence[float], b: Sequence[float],
                         **kwargs) -> Dict[str, float]:
    """:func:`bootstrap_ci` of ``a - b`` over the same images: an interval
    that excludes 0 says ``a`` and ``b`` differ on such images."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f'paired scores need the same images: {a.shape} '
                         f'and {b.shape}')
    return bootstrap_ci(a - b, **kwargs)


def run_mask_probe(train_tokens: torch.Tensor,
                   train_masks: torch.Tensor,
                   test_tokens: torch.Tensor,
                   test_masks: torch.Tensor,
                   grid: Tuple[int, int],
                   ridge: float = 1e-3) -> torch.Tensor:
    """Fit the probe on the training images, score the test images.

    Args:
        train_tokens (Tensor): (N, L, C) with L = h * w.
        train_masks (Tensor): (N, H, W) in [0, 1].
        test_tokens (Tensor): (M, L, C).
        test_masks (Tensor): (M, H, W).
        grid (tuple): (h, w).
        ridge (float): See :func:`fit_linear_probe`.

    Returns:
        Tensor: (M, ) IoU of each test image.
    """
    for name, tokens in (('train', train_tokens), ('test', test_tokens)):
        if tokens.shape[1] != grid[0] * grid[1]:
            raise ValueError(f'{name} tokens: {tokens.shape[1]} patches, '
                             f'the grid {grid[0]}x{grid[1]} has '
                             f'{grid[0] * grid[1]}')
    probe = fit_linear_probe(train_tokens, patch_fractions(train_masks, grid),
                             ridge)
    return mask_iou(predict_fractions(probe, test_tokens), test_masks, grid)
