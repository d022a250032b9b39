from typing import Iterator, Tuple

from mmengine.dataset import DefaultSampler

from mmdpal.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class ResumableSampler(DefaultSampler):
    """mmengine's ``DefaultSampler`` that can start one epoch part-way, so
    that a run resumed from a mid-epoch checkpoint (SIGTERM, see
    :class:`~mmdpal.engine.hooks.TerminationCheckpointHook`) trains each
    sample of that epoch once, as an uninterrupted run does.

    The order of the indices is ``DefaultSampler``'s (``seed + epoch``
    shuffle, the same share per rank); :meth:`skip` drops the first indices
    of this rank's share in one given epoch, however often it is iterated.
    """

    _skip: Tuple[int, int] = (-1, 0)  # (epoch, indices dropped)

    def skip(self, epoch: int, num_samples: int) -> None:
        """Drop the first ``num_samples`` indices of this rank's share in
        ``epoch`` (0-based, as ``set_epoch``)."""
        self._skip = (int(epoch), int(num_samples))

    def _skipped(self) -> int:
        epoch, num = self._skip
        return num if epoch == self.epoch else 0

    def __iter__(self) -> Iterator[int]:
        return iter(list(super().__iter__())[self._skipped():])

    def __len__(self) -> int:
        return self.num_samples - self._skipped()
