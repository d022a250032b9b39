"""Two rules about weights that the teacher, the student loader and the
converters share: does a state dict fit a module, and how a position
embedding's class-token slot is told apart from its patch grid."""
import math
from typing import Dict, Optional, Sequence, Tuple

import torch


class StateDictMismatchError(KeyError, RuntimeError):
    """A checkpoint that does not fit the module it is loaded into.

    A ``KeyError`` (wrong keys) and a ``RuntimeError`` (what
    ``load_state_dict(strict=True)`` raises) at once, with the message printed
    as written (``KeyError`` would quote it on one line).
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


def check_state_dict_fits(state: Dict[str, torch.Tensor],
                          expected: Dict[str, torch.Tensor],
                          what: str,
                          hint: str,
                          allowed_unused: Sequence[str] = ()):
    """Raise one error listing every key of ``state`` that does not fit.

    Missing keys (in the module, not in the checkpoint), unexpected keys (in
    the checkpoint, not in the module) and mis-shaped keys are all listed,
    with both shapes, so a checkpoint of another architecture is named in one
    go rather than one key at a time.

    Args:
        state (dict): The checkpoint's tensors, in the module's key names.
        expected (dict): ``module.state_dict()``.
        what (str): What is loaded into what, e.g. ``"teacher checkpoint
            'x.pth' does not fit the teacher backbone VisionTransformer"``.
        hint (str): How to fix it, appended as the last line.
        allowed_unused (Sequence[str]): Shown with the unexpected keys (keys
            the caller already removed because they may stay unused).

    Raises:
        StateDictMismatchError: When anything does not fit.
    """
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f'{k}: checkpoint {tuple(state[k].shape)} vs model '
        f'{tuple(expected[k].shape)}' for k in state
        if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or mismatched):
        return
    lines = [f'{what}:']
    if mismatched:
        lines.append(f'{len(mismatched)} shape mismatch(es):')
        lines += [f'  {m}' for m in mismatched]
    if missing:
        lines.append(f'{len(missing)} missing in the checkpoint:')
        lines += [f'  {k}' for k in missing]
    if unexpected:
        lines.append(f'{len(unexpected)} unexpected (not in the model; '
                     f'allowed unused: {list(allowed_unused)}):')
        lines += [f'  {k}' for k in unexpected]
    lines.append(hint)
    raise StateDictMismatchError('\n'.join(lines))


def pos_embed_layout(
        num_tokens: int,
        grid: Optional[Tuple[int, int]] = None) -> Tuple[int, Tuple[int, int]]:
    """How many class-token slots (0 or 1) a position embedding of
    ``num_tokens`` positions has, and its patch grid.

    Args:
        num_tokens (int): Length of the embedding (its dim 1).
        grid (tuple, optional): The patch grid ``(rows, cols)`` if known
            (e.g. (16, 8) for a 256x128 ViT/16); None means square.

    Returns:
        tuple: ``(num_extra_tokens, (rows, cols))``.

    Raises:
        ValueError: When ``num_tokens`` is not the grid plus at most one
            class-token slot.
    """
    if grid is None:
        side = math.isqrt(num_tokens)
        if side * side != num_tokens:  # a square grid + a class slot
            side = math.isqrt(num_tokens - 1)
        grid = (side, side)
    extra = num_tokens - grid[0] * grid[1]
    if extra not in (0, 1):
        raise ValueError(
            f'a position embedding of {num_tokens} positions is not a '
            f'{grid[0]}x{grid[1]} grid plus at most one class-token slot: '
            'give the grid it was trained on')
    return extra, tuple(grid)
