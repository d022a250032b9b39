"""Stop on SIGTERM with a checkpoint of the current iteration.

Slurm sends SIGTERM to every process of a job before it kills it
(preemption, time limit, ``scancel``), and torchrun forwards the SIGTERM it
gets to its workers; by default Python then dies at once and the work since
the last checkpoint is lost.
"""
import os
import signal
from typing import Optional

import torch
from mmengine.dist import all_reduce, is_main_process
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop

from mmdpal.datasets import ResumableSampler
from mmdpal.registry import HOOKS


class TerminatedBySignal(Exception):
    """Training stopped by SIGTERM after its checkpoint was written.

    ``tools/train.py`` exits with :attr:`exit_code` (143 = 128 + SIGTERM,
    the shell's code of a job ended by SIGTERM) after the ordered teardown.
    """
    exit_code = 128 + signal.SIGTERM


@HOOKS.register_module()
class TerminationCheckpointHook(Hook):
    """On SIGTERM, finish the current iteration, write its checkpoint on
    every rank's behalf, and stop every rank at the same iteration.

    - A handler, installed before the dataloader workers start, only notes
      the signal (a forked worker inherits it and keeps running, so the
      batch in flight is not lost; workers exit with their process).
    - After each training iteration the ranks take the maximum of their
      flags (one all-reduce of one number), so a signal that reaches one
      rank stops all of them after the same iteration.
    - The checkpoint is the runner's own (``iter_{N}.pth``, optimizer and
      schedulers included; ``last_checkpoint`` points at it, so
      ``tools/train.py --resume`` finds it). Then :class:`TerminatedBySignal`
      ends ``runner.train()`` on every rank.
    - Resuming mid-epoch: the epoch-based loop restarts the epoch's data
      from its first batch, so the first ``k`` batches are skipped with
      :class:`ResumableSampler` (``skip``); with another sampler the
      hook says in the log that those ``k`` batches are trained again.
      Iteration-based loops replay their data loader (mmengine).

    ``tools/train.py`` adds this hook to every config that does not list it
    in ``custom_hooks``.
    """

    priority = 'VERY_LOW'  # after the checkpoint and logger hooks

    def __init__(self):
        self._signalled = False
        self._pid: Optional[int] = None
        self._previous = None

    def _on_sigterm(self, signum, frame) -> None:
        if os.getpid() == self._pid:  # a forked dataloader worker ignores it
            self._signalled = True

    def before_run(self, runner) -> None:
        self._pid = os.getpid()
        self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)

    def after_run(self, runner) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def before_train(self, runner) -> None:
        """A resumed run that stopped mid-epoch skips the batches that the
        checkpoint has already trained."""
        loop = runner.train_loop
        if not isinstance(loop, EpochBasedTrainLoop) or runner.iter == 0:
            return
        done = runner.iter - runner.epoch * len(loop.dataloader)
        if done <= 0:
            return
        sampler = loop.dataloader.sampler
        if isinstance(sampler, ResumableSampler):
            sampler.skip(runner.epoch, done * loop.dataloader.batch_size)
            runner.logger.info(
                f'resumed mid-epoch: the first {done} iterations of epoch '
                f'{runner.epoch + 1} were trained before the checkpoint; '
                'their batches are skipped')
        else:
            runner.logger.warning(
                f'resumed mid-epoch: the first {done} iterations of epoch '
                f'{runner.epoch + 1} were trained before the checkpoint and '
                f'their batches are trained again ({type(sampler).__name__} '
                'cannot skip them; train_dataloader.sampler.type='
                "'mmdpal.ResumableSampler' does)")

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        flag = torch.tensor([float(self._signalled)])
        all_reduce(flag, op='max')
        if not flag.item():
            return
        name = f'iter_{runner.iter + 1}.pth'
        runner.save_checkpoint(runner.work_dir, name, by_epoch=False)
        if is_main_process():
            with open(os.path.join(runner.work_dir, 'last_checkpoint'),
                      'w') as f:
                f.write(os.path.join(runner.work_dir, name))
        raise TerminatedBySignal(
            f'SIGTERM: stopped after iteration {runner.iter + 1} (epoch '
            f'{runner.epoch + 1}); checkpoint {name} written in '
            f'{runner.work_dir}; continue with tools/train.py CONFIG '
            '--resume (the same work dir)')
