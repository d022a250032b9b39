"""Train any mmdpal config: DPAL pretraining or a downstream mmpose / mmdet /
mmseg fine-tuning config. The registry scope is taken from the config's
``default_scope``; mmdpal is always imported so its parts and its checkpoint
handling are available. A config's ``runner_type`` (e.g. mmengine's
``FlexibleRunner`` with a DDP/FSDP strategy) is honoured.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--auto-scale-lr] [--no-validate] [--cfg-options k=v ...]
        [--launcher {none,pytorch,slurm,mpi}]

Several processes: tools/dist_train.sh (torchrun) or tools/slurm_train.sh
(srun), see docs/distributed.md; without a GPU the gloo backend is used.
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from torch.distributed.elastic.multiprocessing.errors import record

import mmdpal  # noqa: F401  (registers modules and checkpoint safe globals)
from mmdpal.utils import run_job, silence_stack_deprecations


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory.')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='whether to auto scale the learning rate according to the '
        'actual batch size and the original batch size.')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate checkpoints during training (downstream '
        'configs)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torchrun passes LOCAL_RANK through the environment; older launchers
    # pass --local_rank / --local-rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg, args):
    """Merge the command-line arguments into the config."""
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir: CLI > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        assert optim_wrapper in ('OptimWrapper', 'AmpOptimWrapper'), \
            '`--amp` is not supported for custom optimizer wrapper type ' \
            f'`{optim_wrapper}`.'
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    if args.auto_scale_lr:
        cfg.setdefault('auto_scale_lr', {})
        cfg.auto_scale_lr.enable = True

    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    # hooks every training run gets unless its config lists them:
    # SIGTERM (Slurm's notice before a kill) -> a checkpoint, then every rank
    # stops; one warning line for each parameter scheduler the loop would clip
    hooks = list(cfg.get('custom_hooks') or [])
    for name in ('TerminationCheckpointHook', 'ScheduleCheckHook'):
        if not any(name in str(h.get('type')) for h in hooks):
            hooks.append(dict(type=f'mmdpal.{name}'))
    cfg.custom_hooks = hooks
    return cfg


def train(runner) -> None:
    runner.train()  # returns the (DDP-wrapped) model: not kept


@record  # a failed rank's error reaches torchrun's summary (root cause)
def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg = merge_args(cfg, args)
    # the runner (the config's `runner_type` or mmengine's), a gloo process
    # group without CUDA, and a defined end on success, error or SIGTERM
    run_job(cfg, train)


if __name__ == '__main__':
    silence_stack_deprecations()
    main()
