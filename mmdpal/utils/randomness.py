"""Random streams derived from keys, so that a resumed run draws exactly
what an uninterrupted one would.

The transforms and models draw from the global generators (python's
``random``, numpy's legacy global ``RandomState`` and torch's default
generators). Instead of saving their states in checkpoints (which cannot
cover persistent dataloader workers), every stream is seeded from a tuple of
integers such as ``(seed, epoch, sample index)``: the draws then depend on
those numbers only, not on which process, worker or resumed run makes them.
"""
import random
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch


def _seed_words(*keys: int) -> np.ndarray:
    """Ten well-mixed 32-bit words from integer keys (numpy's
    ``SeedSequence``: nearby keys give unrelated streams)."""
    return np.random.SeedSequence([int(k) for k in keys]).generate_state(10)


def seed_global_rngs(*keys: int, cuda: bool = True) -> None:
    """Seed python's, numpy's and torch's global generators from ``keys``.

    Args:
        *keys (int): Non-negative integers, e.g. ``(seed, iteration)``.
        cuda (bool): Seed the CUDA generators too (``torch.manual_seed``);
            False touches the CPU generator only. Defaults to True.
    """
    words = _seed_words(*keys)
    # distinct words per generator: python's and numpy's are both MT19937
    # and the same words would give them the same stream
    random.seed(int.from_bytes(words[:4].tobytes(), 'little'))
    np.random.seed(words[4:8])
    torch_seed = int(words[8]) << 31 | int(words[9]) >> 1  # 63 bits
    if cuda:
        torch.manual_seed(torch_seed)
    else:
        torch.default_generator.manual_seed(torch_seed)


@contextmanager
def random_stream(*keys: int) -> Iterator[None]:
    """Run a block with python's, numpy's and torch's CPU generators seeded
    from ``keys``; their states before the block are restored after it.

    Example:
        >>> with random_stream(seed, epoch, index):
        ...     data = pipeline(data)  # the same draws in any process
    """
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    seed_global_rngs(*keys, cuda=False)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
