"""The ReID probe of a DPAL student: kNN mAP and CMC Rank-k of its own
embedding (class token; the mean patch feature for Swin) on a ReID query /
gallery set, without fine-tuning.

    python tools/analysis_tools/reid_probe.py CONFIG [CHECKPOINT | --init |
        --teacher] --data-root data/market1501/Market-1501-v15.09.15 \
        [--dataset Market1501|MSMT17] [--size H W] [--out result.json] \
        [--cfg-options k=v ...]

CONFIG is the pretraining config (it gives the student backbone and the
input normalisation); CHECKPOINT holds the student as ``backbone.*`` (the
output of tools/model_converters/extract_student.py, or a DPAL checkpoint of
tools/train.py), loaded strictly. ``--init`` probes the config's student at
initialisation instead (built as the runner builds it, with the config's
seed: see pattern_utils.build_model), ``--teacher`` the config's teacher
(its class token). The data loader and metric are those of
``configs/downstream/reid/reid-probe_market1501-256x128.py`` (``--probe``),
the validation of a pretraining run with the probe; ``--size`` changes the
size the images are resized to (256x128 there).
"""
import argparse
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from pattern_utils import build_model, write_json  # sibling helpers

import mmdpal  # noqa: F401  (registers modules and checkpoint safe globals)
from mmdpal.evaluation import run_reid_probe
from mmdpal.models.utils import StrictPretrained
from mmdpal.registry import MODELS
from mmdpal.utils import silence_stack_deprecations

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PROBE = osp.join(REPO, 'configs', 'downstream', 'reid',
                 'reid-probe_market1501-256x128.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='the pretraining config')
    parser.add_argument(
        'checkpoint', nargs='?', help='the student (backbone.*)')
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        '--init',
        action='store_true',
        help="the config's student at initialisation (no checkpoint)")
    which.add_argument(
        '--teacher',
        action='store_true',
        help="the config's teacher (model.teacher.checkpoint)")
    parser.add_argument(
        '--data-root', required=True, help='the ReID dataset folder')
    parser.add_argument(
        '--dataset',
        default='Market1501',
        choices=['Market1501', 'MSMT17'],
        help='the layout of --data-root')
    parser.add_argument(
        '--probe', default=PROBE, help='the probe data / metric config')
    parser.add_argument(
        '--size',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='resize the images to H x W (default: the --probe config\'s)')
    parser.add_argument('--batch-size', type=int, help='override')
    parser.add_argument('--num-workers', type=int, default=2)
    parser.add_argument('--out', help='write the metrics to this json file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of CONFIG')
    args = parser.parse_args(argv)
    if (args.checkpoint is None) == (not (args.init or args.teacher)):
        parser.error('give either a student CHECKPOINT or --init / --teacher')
    return args


def load_student(cfg: Config, checkpoint: str) -> torch.nn.Module:
    """The config's student backbone with the checkpoint's ``backbone.*``
    tensors, checked one to one (mmdpal.StrictPretrained)."""
    holder = torch.nn.Module()
    holder.backbone = MODELS.build(cfg.model.backbone)
    StrictPretrained(checkpoint, prefix='backbone.')(holder)
    return holder.backbone


def load_model(cfg: Config, args) -> torch.nn.Module:
    """The network to probe: the student of ``args.checkpoint``, or the
    config's student at initialisation / its teacher's ViT."""
    if args.checkpoint:
        return load_student(cfg, args.checkpoint)
    model = build_model(cfg)
    return model.teacher.vit if args.teacher else model.backbone


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    probe = Config.fromfile(args.probe)
    loader_cfg = probe.val_dataloader
    loader_cfg.dataset.update(type=args.dataset, data_root=args.data_root)
    loader_cfg.update(num_workers=args.num_workers, persistent_workers=False)
    if args.batch_size:
        loader_cfg.batch_size = args.batch_size
    if args.size:
        for transform in loader_cfg.dataset.pipeline:
            if transform.type == 'Resize':
                transform.scale = tuple(args.size[::-1])  # (w, h)
    init_default_scope('mmdpal')

    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    backbone = load_model(cfg, args).to(device)
    preprocess = MODELS.build(
        cfg.model.get('data_preprocessor')
        or dict(type='SelfSupDataPreprocessor')).to(device)
    dataloader = Runner.build_dataloader(loader_cfg)
    metrics = run_reid_probe(backbone, preprocess, dataloader,
                             Evaluator(probe.val_evaluator))
    what = args.checkpoint or ('the teacher' if args.teacher else
                               'the student at initialisation')
    print(f'ReID probe of {what} on {args.data_root} '
          f'({len(dataloader.dataset)} images):')
    for key, value in metrics.items():
        print(f'  {key}: {value:.4f}')
    if args.out:
        write_json(args.out, metrics)
    return metrics


if __name__ == '__main__':
    silence_stack_deprecations()
    main()
