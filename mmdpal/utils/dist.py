"""Multi-process training and testing on machines without a GPU.

mmengine 0.10.7 starts its ``pytorch``, ``slurm`` and ``mpi`` launchers with
``torch.cuda.set_device`` and wraps the model in DDP with
``device_ids=[LOCAL_RANK]``; both fail when CUDA is absent. On such a
machine :func:`setup_cpu_distributed` initialises the process group itself
(gloo) before the runner is built, so that the runner skips its own
initialisation, and wraps the model in :class:`CPUDistributedDataParallel`
(no device ids; SyncBN, which needs CUDA, reverted to BatchNorm). With a GPU
it does nothing: mmengine's own path (NCCL) is taken unchanged.
"""
import datetime
import os
import subprocess
from typing import Tuple

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm

from mmdpal.registry import MODEL_WRAPPERS

# the torch.distributed default port
DEFAULT_PORT = '29500'


def _launcher_env(launcher: str) -> Tuple[int, int, int]:
    """Rank, world size and local rank that ``launcher`` gave this process;
    sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT as
    mmengine's launchers do (the runner and the DDP wrapper read them)."""
    if launcher == 'pytorch':  # torchrun sets all of them
        names = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK')
    elif launcher == 'slurm':
        names = ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID')
        if 'MASTER_ADDR' not in os.environ and 'SLURM_NODELIST' in os.environ:
            os.environ['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {os.environ["SLURM_NODELIST"]} '
                '| head -n1')
    elif launcher == 'mpi':
        names = ('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE',
                 'OMPI_COMM_WORLD_LOCAL_RANK')
    else:
        raise ValueError(f'unknown launcher {launcher!r}: use none, pytorch, '
                         'slurm or mpi')
    missing = [n for n in names if n not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher {launcher} but {", ".join(missing)} not set: start '
            'the job with tools/dist_train.sh (torchrun), '
            'tools/slurm_train.sh (srun) or mpirun, or drop --launcher')
    rank, world_size, local_rank = (int(os.environ[n]) for n in names)
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(local_rank))
    os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
    os.environ.setdefault('MASTER_PORT', DEFAULT_PORT)
    return rank, world_size, local_rank


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's ``MMDistributedDataParallel`` for processes without a GPU:
    no device ids, and ``SyncBatchNorm`` layers (CUDA only, e.g. mmseg's
    ``norm_cfg=dict(type='SyncBN')``) reverted to ``BatchNorm``, so each
    process keeps its own batch statistics while training.

    Args:
        module (nn.Module): The model, on the CPU.
        **kwargs: Other arguments of ``DistributedDataParallel``
            (``device_ids`` is ignored).
    """

    def __init__(self, module: torch.nn.Module, **kwargs):
        kwargs['device_ids'] = None
        num_sync = sum(
            isinstance(m, torch.nn.SyncBatchNorm) for m in module.modules())
        if num_sync:
            module = revert_sync_batchnorm(module)
            print_log(
                f'no CUDA device: {num_sync} SyncBatchNorm layers reverted '
                'to BatchNorm (statistics per process)',
                logger='current')
        super().__init__(module=module, **kwargs)


def _cpu_wrapper(wrapper_cfg: dict) -> dict:
    """The DDP wrapper config for CPU processes: a given DDP type keeps its
    options with ``device_ids=None``; by default
    :class:`CPUDistributedDataParallel`."""
    wrapper_cfg = dict(wrapper_cfg)
    wrapper_cfg.setdefault('type', 'mmdpal.CPUDistributedDataParallel')
    if wrapper_cfg['type'] == 'MMDistributedDataParallel':
        wrapper_cfg['type'] = 'mmdpal.CPUDistributedDataParallel'
    wrapper_cfg.setdefault('broadcast_buffers', False)
    wrapper_cfg['device_ids'] = None
    return wrapper_cfg


def setup_cpu_distributed(cfg: Config) -> bool:
    """Prepare a multi-process run on a machine without CUDA.

    With ``cfg.launcher`` other than ``'none'`` and no CUDA device, this
    initialises the default process group with the gloo backend (the
    ``env_cfg.dist_cfg.timeout`` of the config applies) and sets the DDP
    wrapper of the config (``model_wrapper_cfg`` for mmengine's ``Runner``,
    ``strategy.model_wrapper`` for ``FlexibleRunner``) to
    :class:`CPUDistributedDataParallel`, or a custom DDP wrapper to use no
    device ids; ``find_unused_parameters`` of the config is kept.

    Args:
        cfg (Config): The full config, ``launcher`` already merged.

    Returns:
        bool: Whether the process group was initialised here.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return False
    rank, world_size, _ = _launcher_env(launcher)
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
    backend = dist_cfg.pop('backend', 'gloo')
    if backend != 'gloo':
        print_log(
            f'no CUDA device: env_cfg.dist_cfg.backend={backend!r} replaced '
            'by gloo',
            logger='current')
    timeout = dist_cfg.pop('timeout', None)
    if not torch_dist.is_initialized():
        kwargs = dict(backend='gloo', rank=rank, world_size=world_size)
        if timeout is not None:
            kwargs['timeout'] = datetime.timedelta(seconds=timeout)
        torch_dist.init_process_group(**kwargs)

    if cfg.get('runner_type', 'Runner') == 'FlexibleRunner':
        strategy = cfg.get('strategy') or dict(type='DDPStrategy')
        if strategy.get('type') != 'DDPStrategy':
            raise RuntimeError(
                f'strategy {strategy.get("type")!r} needs a GPU: use '
                "strategy=dict(type='DDPStrategy') on a CPU")
        strategy['model_wrapper'] = _cpu_wrapper(
            strategy.get('model_wrapper') or {})
        cfg.strategy = strategy
    else:
        wrapper = cfg.get('model_wrapper_cfg') or dict(
            find_unused_parameters=cfg.get('find_unused_parameters', False))
        cfg.model_wrapper_cfg = _cpu_wrapper(wrapper)
    return True
