"""The person-mask probe of students and their teacher: how well the patch
tokens of each network say where the person is, on held-out crops, with
95% bootstrap intervals.

    python tools/analysis_tools/mask_probe.py CONFIG --data-root DIR \
        --model init --model dpal=work_dirs/x/iter_200.pth --model teacher \
        [--size H W] [--out result.json]

DIR is an output of demo/vtest_to_lup.py: its meta.json lists the training
and held-out crops and their person masks (``masks/<split>/*.png``). Each
``--model`` is ``init`` (the config's student at initialisation, built as
the runner builds it), ``teacher`` (the config's teacher, seeing the view at
its aligned size, so its token grid is the student's), or ``NAME=CHECKPOINT``
(a student: a DPAL checkpoint of tools/train.py or the output of
extract_student.py, its ``backbone.*`` loaded strictly into CONFIG's
student). Only the network's own patch tokens are read (no decoder). The
first model is the reference of the paired differences.

The probe: a linear map from each patch token to the fraction of its patch
covered by the person, the mean training fraction of the patch's position
(the *position prior*) plus a ridge regression (closed form) on the token,
fitted on the training crops; on the held-out crops its map, upsampled to
the mask's pixels and thresholded at 0.5, is compared with the person mask
(intersection over union, one number per crop). Every number comes with a
bootstrap interval over the held-out crops, and two networks are compared
on the same crops (paired bootstrap of the difference). Tokens that carry
nothing about the image give the position prior's score; a network whose
tokens locate the person beats it.
"""
import argparse
import os.path as osp
import time
from typing import Dict, NamedTuple, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from pattern_utils import read_meta  # sibling analysis helpers
from pattern_utils import build_model, write_json

import mmdpal  # noqa: F401  (registers modules and checkpoint safe globals)
from mmdpal.models.algorithms.dpal import split_tokens
from mmdpal.utils import silence_stack_deprecations

PRIOR = 'position prior (no image)'


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


# ------------------------------------------------------------- the tool
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='the pretraining config')
    parser.add_argument(
        '--data-root', required=True, help='an output of vtest_to_lup.py')
    parser.add_argument(
        '--model',
        action='append',
        required=True,
        help="'init', 'teacher' or NAME=CHECKPOINT; repeat it")
    parser.add_argument(
        '--size',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        default=(128, 64),
        help="the student's view size (default 128 64, the demo's)")
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--reps', type=int, default=2000, help='bootstrap')
    parser.add_argument('--out', help='write the results to this json file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of CONFIG')
    return parser.parse_args(argv)


def read_split(data_root: str, split: str, size) -> tuple:
    """The crops of ``split`` (uint8 BGR, (N, 3, H, W)) and their masks in
    [0, 1] ((N, H, W)), resized to ``size``."""
    records = [r for r in read_meta(data_root)['crops'] if r['split'] == split]
    if records and 'mask' not in records[0]:
        raise KeyError(
            f'mask probe: {osp.join(data_root, "meta.json")} lists no person '
            'masks (written by an older vtest_to_lup.py): run python '
            f'demo/vtest_to_lup.py --out {data_root} again')
    imgs, masks = [], []
    h, w = size
    for rec in records:
        img = cv2.imread(osp.join(data_root, rec['file']))
        mask = cv2.imread(
            osp.join(data_root, rec['mask']), cv2.IMREAD_GRAYSCALE)
        if img is None or mask is None:
            raise FileNotFoundError(
                f"mask probe: cannot read {rec['file']} or {rec['mask']} "
                f'under {data_root}: run demo/vtest_to_lup.py again')
        imgs.append(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA))
        masks.append(cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA))
    imgs = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2)
    masks = torch.from_numpy(np.stack(masks)).float() / 255
    return imgs, masks


def normalise(cfg: Config, imgs: torch.Tensor) -> torch.Tensor:
    """As the config's data preprocessor: BGR -> RGB, mean / std."""
    pre = cfg.model.data_preprocessor
    x = imgs.float()
    if pre.get('to_rgb', False):
        x = x.flip(1)
    mean = torch.tensor(pre.mean).view(1, 3, 1, 1)
    std = torch.tensor(pre.std).view(1, 3, 1, 1)
    return (x - mean) / std


class TokenReader:
    """The patch tokens (N, L, C) of a network on a batch of views."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.model = build_model(cfg)  # the student at init + the teacher

    def network(self, spec: str):
        if spec == 'init':
            return 'student at initialisation', self.model.backbone
        if spec == 'teacher':
            return 'teacher', None
        name, sep, path = spec.partition('=')
        if not sep or not path:
            raise ValueError(f"--model {spec!r}: give 'init', 'teacher' or "
                             'NAME=CHECKPOINT')
        from reid_probe import load_student  # sibling analysis tool
        backbone = load_student(self.cfg, path)
        backbone.eval()  # (mmpretrain's ViT.train() returns None)
        return name, backbone

    @torch.no_grad()
    def tokens(self, backbone, views: torch.Tensor, batch: int):
        out, grid = [], self.grid(views)
        for x in views.split(batch):
            if backbone is None:  # the teacher, at its aligned size
                out.append(
                    self.model.teacher(
                        x, grid, with_shape_mask=False,
                        with_relation=False).patch_tokens.float())
            else:
                feats = backbone(x)[-1]
                stride = None if feats.dim() == 4 else \
                    backbone.patch_embed.projection.stride
                out.append(split_tokens(feats, stride, x.shape[-2:])[1])
        return torch.cat(out)

    def grid(self, views: torch.Tensor):
        sh, sw = self.model.backbone.patch_embed.projection.stride
        return views.shape[-2] // sh, views.shape[-1] // sw


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope('mmdpal')
    torch.set_grad_enabled(False)
    train_imgs, train_masks = read_split(args.data_root, 'train', args.size)
    test_imgs, test_masks = read_split(args.data_root, 'heldout', args.size)
    train_views, test_views = (normalise(cfg, train_imgs),
                               normalise(cfg, test_imgs))
    reader = TokenReader(cfg)
    grid = reader.grid(test_views)

    scores = {}
    for i, spec in enumerate(args.model, 1):
        start = time.perf_counter()
        name, backbone = reader.network(spec)
        if name in scores or name == PRIOR:
            raise ValueError(f'--model {spec!r}: the name {name!r} is taken; '
                             'give each model its own NAME=')
        scores[name] = run_mask_probe(
            reader.tokens(backbone, train_views, args.batch_size), train_masks,
            reader.tokens(backbone, test_views, args.batch_size), test_masks,
            grid).numpy()
        print(
            f'mask probe: model {i}/{len(args.model)} ({name}) in '
            f'{time.perf_counter() - start:.1f} s',
            flush=True)
    prior = position_prior(patch_fractions(train_masks, grid), len(test_masks))
    scores[PRIOR] = mask_iou(prior, test_masks, grid).numpy()

    reference = next(iter(scores))
    result = dict(
        data_root=args.data_root,
        train_images=len(train_masks),
        test_images=len(test_masks),
        size=list(args.size),
        grid=list(grid),
        reference=reference,
        models={})
    print(f'Person-mask IoU on {len(test_masks)} held-out crops '
          f'({args.size[0]}x{args.size[1]}, {grid[0]}x{grid[1]} tokens; '
          f'probe fitted on {len(train_masks)} training crops), 95% '
          'bootstrap intervals:')
    print(f"{'model':34s} {'IoU [95% CI]':22s} minus {reference} [95% CI]")
    for name, iou in scores.items():
        ci = bootstrap_ci(iou, reps=args.reps)
        diff = paired_difference_ci(iou, scores[reference], reps=args.reps)
        result['models'][name] = dict(
            iou=ci, minus_reference=diff, per_image=iou.round(5).tolist())
        print(f"{name:34s} {ci['mean']:.3f} [{ci['low']:.3f}, "
              f"{ci['high']:.3f}]   {diff['mean']:+.3f} [{diff['low']:+.3f},"
              f" {diff['high']:+.3f}]")
    if args.out:
        write_json(args.out, result)
    return result


if __name__ == '__main__':
    silence_stack_deprecations()
    main()
