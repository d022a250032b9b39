"""The person-mask probe of students and their teacher: how well the patch
tokens of each network say where the person is, on held-out crops, with
95% bootstrap intervals (mmdpal.evaluation.mask_probe).

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
"""
import argparse
import json
import os
import os.path as osp
import time

import cv2
import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

import mmdpal  # noqa: F401  (registers modules and checkpoint safe globals)
from mmdpal.evaluation import (bootstrap_ci, mask_iou, paired_difference_ci,
                               patch_fractions, position_prior, run_mask_probe)
from mmdpal.models.algorithms.dpal import split_tokens
from mmdpal.utils import silence_stack_deprecations

PRIOR = 'position prior (no image)'


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
    meta_file = osp.join(data_root, 'meta.json')
    if not osp.isfile(meta_file):
        raise FileNotFoundError(
            f'mask probe: {meta_file} not found: make the data with '
            f'python demo/vtest_to_lup.py --out {data_root}')
    with open(meta_file) as f:
        records = [r for r in json.load(f)['crops'] if r['split'] == split]
    if records and 'mask' not in records[0]:
        raise KeyError(
            f'mask probe: {meta_file} lists no person masks (written by an '
            'older vtest_to_lup.py): run python demo/vtest_to_lup.py '
            f'--out {data_root} again')
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
        from pattern_utils import build_model  # sibling analysis helpers
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
        out = []
        for x in views.split(batch):
            if backbone is None:  # the teacher, at its aligned size
                grid = self.grid(views)
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
    for spec in args.model:
        start = time.perf_counter()
        name, backbone = reader.network(spec)
        if name in scores or name == PRIOR:
            raise ValueError(f'--model {spec!r}: the name {name!r} is taken; '
                             'give each model its own NAME=')
        scores[name] = run_mask_probe(
            reader.tokens(backbone, train_views, args.batch_size), train_masks,
            reader.tokens(backbone, test_views, args.batch_size), test_masks,
            grid).numpy()
        print(f'mask probe: {name} in {time.perf_counter() - start:.1f} s')
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
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    silence_stack_deprecations()
    main()
