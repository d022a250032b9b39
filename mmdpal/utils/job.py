"""One training or test job, from the runner's build to the process's exit,
with a defined teardown (docs/distributed.md, "How a run ends").

``tools/train.py`` and ``tools/test.py`` run their runner through
:func:`run_job`; it is what makes a finished multi-process run exit 0, a
failed rank stop every rank with one line naming it, and SIGTERM end in a
checkpoint (:class:`~mmdpal.engine.hooks.TerminationCheckpointHook`).
"""
import gc
import os
import sys
import time
from typing import Any, Callable

import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .dist import setup_cpu_distributed

# seconds the ranks wait for each other at the end of a finished job
END_TIMEOUT = 300


def _rank_line(runner) -> str:
    """``rank R of W`` and, while training, where it stopped."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        where = (f'rank {torch_dist.get_rank()} of '
                 f'{torch_dist.get_world_size()}')
    else:
        where = 'the process'
    loop = getattr(runner, '_train_loop', None)
    if runner is not None and not isinstance(loop, (dict, type(None))):
        where += f' at iteration {runner.iter + 1} (epoch {runner.epoch + 1})'
    return where


def shutdown_dataloader_workers(runner) -> None:
    """Stop the worker processes of the runner's data loaders now (persistent
    workers otherwise live until the interpreter's exit, when their queues
    and the process group are torn down in no defined order)."""
    for name in ('_train_loop', '_val_loop', '_test_loop'):
        loop = getattr(runner, name, None)
        if loop is None or isinstance(loop, dict):
            continue
        iterators = [getattr(loop.dataloader, '_iterator', None)]
        infinite = getattr(loop, 'dataloader_iterator', None)
        iterators.append(getattr(infinite, '_iterator', None))
        for it in iterators:
            if hasattr(it, '_shutdown_workers'):
                it._shutdown_workers()


def _store_wait(store, key: str, count: int) -> None:
    """Wait until ``count`` ranks have added 1 to ``key`` in the store."""
    deadline = time.monotonic() + END_TIMEOUT
    while int(store.add(key, 0)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f'{_rank_line(None)}: the other ranks did not '
                               f'finish within {END_TIMEOUT} s of this one')
        time.sleep(0.02)


def end_process_group() -> None:
    """Leave the process group once every rank is done with it.

    The ranks meet in the store, not in the backend, so that no gloo or
    NCCL operation is in flight on any rank when the first one shuts its
    backend down; rank 0 (which hosts the store when torchrun's agent does
    not) leaves it last. Each rank then destroys the group while the
    interpreter is whole; the DDP wrapper that held it is gone by then
    (:func:`run_job`).
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    rank, world_size = torch_dist.get_rank(), torch_dist.get_world_size()
    if world_size > 1:
        store = torch_dist.distributed_c10d._get_default_store()
        attempt = os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')
        store.add(f'mmdpal/{attempt}/done', 1)
        _store_wait(store, f'mmdpal/{attempt}/done', world_size)
        if rank == 0:
            _store_wait(store, f'mmdpal/{attempt}/left', world_size - 1)
        else:
            store.add(f'mmdpal/{attempt}/left', 1)
    torch_dist.destroy_process_group()


def build_runner(cfg: Config):
    """mmengine's ``Runner`` unless the config names its ``runner_type``."""
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def run_job(cfg: Config, work: Callable[[Any], Any]) -> Any:
    """Build the runner of ``cfg``, run ``work(runner)`` and end the
    process's part of the job in a defined order.

    - Success: data loader workers stopped, the runner (and with it the
      DDP wrapper, which holds the process group) released, then the ranks
      meet and the process group is destroyed.
    - SIGTERM (:class:`TerminatedBySignal`, after the checkpoint): the same
      order, then ``sys.exit(143)``.
    - Any other exception: one line on stderr, ``mmdpal: rank R of W
      failed at iteration I (epoch E): Type: message``, the workers
      stopped, and the exception raised (exit code 1; torchrun's summary
      names this rank as the root cause with ``@record``). The process
      group is left to the exit: the other ranks may be inside a
      collective with this one, and the closed connection ends theirs.

    Args:
        cfg (Config): The full config (``launcher`` merged).
        work (callable): ``runner -> result``, e.g. ``Runner.train``.

    Returns:
        The result of ``work``.
    """
    from mmdpal.engine.hooks import TerminatedBySignal
    setup_cpu_distributed(cfg)
    runner, result, stop = None, None, None
    try:
        runner = build_runner(cfg)
        result = work(runner)
    except TerminatedBySignal as signalled:  # the checkpoint is written
        stop = signalled
        print(
            f'mmdpal: {_rank_line(None)}: {stop}', file=sys.stderr, flush=True)
    except BaseException as error:
        if not isinstance(error, KeyboardInterrupt):
            print(
                f'mmdpal: {_rank_line(runner)} failed: '
                f'{type(error).__name__}: {error}',
                file=sys.stderr,
                flush=True)
        if runner is not None:
            shutdown_dataloader_workers(runner)
        raise
    shutdown_dataloader_workers(runner)
    runner = None  # with it the DDP wrapper, which holds the process group
    gc.collect()
    end_process_group()
    if stop is not None:
        sys.exit(stop.exit_code)
    return result
