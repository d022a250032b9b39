"""One-line build errors for option values, shared by the models (the
algorithm, the teacher, the decoders) and the data (datasets, transforms)."""
from typing import Sequence


def check_choice(key: str, value, allowed: Sequence) -> None:
    """One-line build error for an option value that does not exist."""
    if value not in allowed:
        raise ValueError(f'{key}={value!r}: use one of {list(allowed)}')


def check_heads(key: str, dims: int, num_heads: int) -> None:
    """One-line build error when ``num_heads`` does not divide ``dims``."""
    if num_heads < 1 or dims % num_heads:
        allowed = [h for h in range(1, dims + 1) if dims % h == 0]
        raise ValueError(f'{key}={num_heads} does not divide the width '
                         f'{dims}: use one of {allowed}')
