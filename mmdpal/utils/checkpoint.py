"""Checkpoint loading under torch >= 2.6 (``weights_only=True`` by default).

Two kinds of checkpoints, two deliberate choices:

* Checkpoints that mmengine's runner writes (ours: ``epoch_N.pth``,
  ``iter_N.pth``) carry numpy arrays and mmengine's ``HistoryBuffer`` in their
  ``meta`` / ``message_hub``; ``resume`` needs them. Rather than turning
  ``weights_only`` off, the exact types mmengine writes are allow-listed with
  :func:`torch.serialization.add_safe_globals` (done on ``import mmdpal``).
  mmengine also pickles ``HistoryBuffer``'s table of statistics *functions*
  through ``builtins.getattr``, which must never be allow-listed (it opens
  attribute walks to arbitrary code); :func:`_pickle_statistics_by_name`
  makes ``HistoryBuffer`` store the method names instead (the methods
  themselves are registered again by code on import).
* Third-party checkpoints (teachers, downloaded weights) are loaded by
  :func:`load_third_party_checkpoint` with ``weights_only=True`` and no
  allow-list beyond torch's own: they can only hold tensors and plain
  containers.
"""
import os
import os.path as osp
import re

import numpy as np
import torch

_REGISTERED = False


def _mmengine_checkpoint_globals():
    """The non-tensor globals of an mmengine 0.10.7 runner checkpoint: what
    ``torch.serialization.get_unsafe_globals_in_checkpoint`` lists, plus the
    numpy 2 dtype classes that ``np.dtype`` instances are built as."""
    from mmengine.logging.history_buffer import HistoryBuffer
    numeric_dtypes = [
        type(np.dtype(t))
        for t in (np.float64, np.float32, np.float16, np.int64, np.int32,
                  np.int16, np.int8, np.uint64, np.uint32, np.uint16, np.uint8,
                  np.bool_)
    ]
    return [
        HistoryBuffer,
        np.ndarray,
        np.dtype,
        np._core.multiarray._reconstruct,
        np._core.multiarray.scalar,
        *numeric_dtypes,
    ]


def _pickle_statistics_by_name() -> None:
    """Make mmengine's ``HistoryBuffer`` pickle its statistics methods by
    name rather than as functions (which pickle through ``getattr``)."""
    from mmengine.logging.history_buffer import HistoryBuffer

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['statistics_methods'] = sorted(self._statistics_methods)
        return state

    def __setstate__(self, state: dict) -> None:
        methods = state.pop('statistics_methods', [])
        if isinstance(methods, dict):  # written by plain mmengine
            self._statistics_methods.update(methods)
        self.__dict__.update(state)

    HistoryBuffer.__getstate__ = __getstate__
    HistoryBuffer.__setstate__ = __setstate__


def register_checkpoint_safe_globals() -> None:
    """Allow-list the types of mmengine runner checkpoints (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    _pickle_statistics_by_name()
    torch.serialization.add_safe_globals(_mmengine_checkpoint_globals())
    _REGISTERED = True


def load_third_party_checkpoint(path: str, what: str = 'checkpoint') -> dict:
    """Load a checkpoint that this project did not write, tensors only.

    Args:
        path (str): Path to the ``.pth`` / ``.pt`` / ``.bin`` file.
        what (str): What the file is, for error messages (e.g. "teacher").

    Returns:
        dict: What ``torch.load`` returned, loaded with ``weights_only=True``.
    """
    if not isinstance(path, (str, os.PathLike)) or not osp.isfile(path):
        raise FileNotFoundError(
            f'{what} checkpoint not found: {path!r}. Convert the released '
            'weights with tools/model_converters/ (README, "Pretraining": '
            'path_to_mmdpal.py for PATH) and point the config at the '
            'converted file.')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # torch raises UnpicklingError or RuntimeError
        raise RuntimeError(
            f'{what} checkpoint {path!r} could not be loaded with '
            f'weights_only=True ({type(e).__name__}: '
            f'{str(e).splitlines()[0]}). '
            'Third-party checkpoints must hold tensors only: re-save it with '
            'tools/model_converters/ which writes a plain state dict.') from e


class UnsafeCheckpointError(ValueError):
    """A checkpoint that holds more than the caller allows; one line."""


def load_checkpoint_allowing(path: str, allowed=(), what: str = 'checkpoint'):
    """Load a third-party checkpoint that may hold exactly the ``allowed``
    classes besides tensors and plain containers, without running any other
    pickled code.

    ``weights_only=True`` with the process-wide allow-list replaced, for the
    duration of the load, by ``allowed`` alone (``import mmdpal`` allow-lists
    the types of mmengine's runner checkpoints, which a third-party file has
    no reason to hold). Used for the authors' pretraining checkpoint, which
    pickles its ``argparse.Namespace`` of arguments.

    Args:
        path (str): The file.
        allowed (Sequence[type]): Classes the file may hold.
        what (str): What the file is, for the messages.

    Returns:
        What ``torch.load`` returned.

    Raises:
        FileNotFoundError: No such file.
        UnsafeCheckpointError: The file holds another class (named, with
            the way out), or it is no torch checkpoint; the message is one
            line.
    """
    if not isinstance(path, (str, os.PathLike)) or not osp.isfile(path):
        raise FileNotFoundError(f'{what} {path!r} not found')
    allowed = list(allowed)
    names = sorted(f'{c.__module__}.{c.__qualname__}' for c in allowed)
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    torch.serialization.add_safe_globals(allowed)
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:
        try:
            found = [
                g for g in
                torch.serialization.get_unsafe_globals_in_checkpoint(path)
                if g not in names
            ]
        except Exception:  # not a zip checkpoint: no list of globals
            found = []
        if not found:
            raise UnsafeCheckpointError(
                f'{what} {path!r} could not be read as a torch checkpoint '
                f'({type(e).__name__}: {_first_line(e)}): pass a file '
                'written by torch.save') from None
        raise UnsafeCheckpointError(
            f'{what} {path!r} holds {found} besides tensors, containers'
            f'{" and " + ", ".join(names) if names else ""}; it is not '
            'read, since unpickling it could run code: re-save its state '
            'dict alone (torch.save(ckpt["student"], ...)) where you trust '
            'the file') from None
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(saved)


def unpickling_refusal(e: Exception) -> str:
    """What a ``weights_only`` load refused, from its error: e.g.
    ``'argparse.Namespace'`` (else the error's first line)."""
    found = re.findall(r'GLOBAL ([\w.]+)', str(e))
    return ', '.join(dict.fromkeys(found)) if found else _first_line(e)


def _first_line(e: Exception) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[0][:200] if lines else ''
