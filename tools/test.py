"""Evaluate a checkpoint with any mmdpal config (downstream mmpose / mmdet /
mmseg configs included). The registry scope is taken from the config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
        [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}] [--tta]

--tta tests with the config's ``tta_model`` and ``tta_pipeline`` (e.g. the
multi-scale + flip test of configs/downstream/mmseg/*_official.py), as
mmseg's tools/test.py does.

Several processes: tools/dist_test.sh (torchrun) or tools/slurm_test.sh
(srun); the results of all ranks are gathered once before the metrics are
computed (docs/distributed.md).
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from torch.distributed.elastic.multiprocessing.errors import record

import mmdpal  # noqa: F401  (registers modules and checkpoint safe globals)
from mmdpal.utils import run_job, silence_stack_deprecations


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument(
        '--out', help='dump the metrics to this pickle/json/yaml file')
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
    parser.add_argument(
        '--tta',
        action='store_true',
        help="test with the config's tta_model and tta_pipeline")
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


@record  # a failed rank's error reaches torchrun's summary (root cause)
def main():
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'checkpoint {args.checkpoint!r} does not exist: pass the .pth '
            'that tools/train.py wrote (work_dirs/<config>/epoch_N.pth or '
            'iter_N.pth)')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ValueError(
                f'{args.config} has no tta_model / tta_pipeline: --tta needs '
                'both (e.g. configs/downstream/mmseg/*_official.py)')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model

    def test(runner):
        metrics = runner.test()  # computed once, on the gathered results
        if args.out is not None and runner.rank == 0:
            import mmengine
            mmengine.dump(metrics, args.out)
        return metrics

    # the runner, a gloo process group without CUDA, a defined end
    return run_job(cfg, test)


if __name__ == '__main__':
    silence_stack_deprecations()
    main()
