import math
from typing import Optional, Sequence, Tuple

import torch
from mmengine.dist import all_gather_object, all_reduce, get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdpal.datasets.lup import too_many_bad_images
from mmdpal.registry import HOOKS


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop training when any loss term is NaN or inf, naming the term, the
    iteration and (with several processes) the rank.

    The loss terms of all ranks are gathered every iteration (one
    all-reduce of a ``(world_size, num_terms)`` tensor) so that every rank
    stops at the same iteration with the same message, instead of one rank
    failing while the others wait in the next gradient all-reduce. The host
    synchronisation that reads the values is the one mmengine's message hub
    already makes every iteration to log them.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        names = sorted(k for k in (outputs or {}) if k.startswith('loss'))
        if not names:
            return
        values = torch.stack(
            [torch.as_tensor(outputs[k]).detach().float() for k in names])
        rank, world_size = get_dist_info()
        if world_size > 1:
            table = values.new_zeros(world_size, len(names))
            table[rank] = values
            all_reduce(table)  # each rank fills its own row
        else:
            table = values[None]
        table = table.cpu()
        if bool(torch.isfinite(table).all()):
            return
        bad_rank = int((~torch.isfinite(table)).any(dim=1).nonzero()[0])
        bad = [(n, v) for n, v in zip(names, table[bad_rank].tolist())
               if not math.isfinite(v)]
        # name the terms; the total `loss` only when it alone is bad
        terms = [(n, v) for n, v in bad if n != 'loss'] or bad
        where = f' on rank {bad_rank} of {world_size}' \
            if world_size > 1 else ''
        raise FloatingPointError(
            ', '.join(f'{n} is {v}' for n, v in terms) +
            f' at iteration {runner.iter + 1} (epoch {runner.epoch + 1})'
            f'{where}: lower the learning rate, enable gradient clipping '
            '(optim_wrapper.clip_grad) or check the data of this batch')


@HOOKS.register_module()
class BadImageLoggerHook(Hook):
    """Log how many distinct training images could not be decoded, over all
    ranks, every epoch (and every ``interval`` iterations, when the count
    changed), and stop training once they are more than the dataset's
    ``max_bad_fraction``.

    The dataset (:class:`LUPersonDataset`) remembers the bad indices of its
    process and workers; the hook takes the union over the ranks (one
    ``all_gather_object`` per call), so an image is counted once however
    many ranks or epochs meet it, and every rank stops together.

    Args:
        interval (int): Iterations between mid-epoch checks. Defaults to
            1000.
    """

    def __init__(self, interval: int = 1000):
        self.interval = interval
        self._last_logged = None

    def _check(self, runner, only_if_changed: bool) -> None:
        dataset = runner.train_dataloader.dataset
        if not hasattr(dataset, 'bad_image_indices'):
            return
        bad = set()
        for indices in all_gather_object(dataset.bad_image_indices().tolist()):
            bad.update(indices)
        num_bad = len(bad)
        if not (only_if_changed and num_bad == self._last_logged):
            runner.logger.info(
                f'undecodable training images skipped so far: {num_bad} of '
                f'{len(dataset)} '
                f'({100 * num_bad / max(len(dataset), 1):.3f}%)')
            self._last_logged = num_bad
        max_fraction = getattr(dataset, 'max_bad_fraction', None)
        if max_fraction is not None and num_bad > max_fraction * len(dataset):
            raise too_many_bad_images(num_bad, len(dataset), max_fraction,
                                      'the skipped files are logged')

    def after_train_epoch(self, runner) -> None:
        self._check(runner, only_if_changed=False)

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        if self.every_n_train_iters(runner, self.interval):
            self._check(runner, only_if_changed=True)


@HOOKS.register_module()
class RouterLossScheduleHook(Hook):
    """Step the decoder's ``router_loss_weight`` by epoch, as the authors'
    code does (0.1 for the first 20 epochs, then 0.01).

    Args:
        milestones (sequence): ``[(epoch, weight), ...]``: from that (0-based)
            epoch on, the weight is used.
    """

    def __init__(self, milestones: Sequence[Tuple[int, float]]):
        self.milestones = sorted((int(e), float(w)) for e, w in milestones)

    def before_train_epoch(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        weight = None
        for epoch, w in self.milestones:
            if runner.epoch >= epoch:
                weight = w
        if weight is not None:
            model.decoder.router_loss_weight = weight
