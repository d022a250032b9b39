"""mmdpal: DPAL distillation pretraining as an OpenMMLab plugin.

Importing mmdpal registers its models, datasets, transforms and hooks in the
``mmdpal`` registry scope (a child of mmpretrain's) and allow-lists the types
of mmengine runner checkpoints for ``torch.load(weights_only=True)``.
"""
from .version import __version__
from .utils import register_checkpoint_safe_globals

register_checkpoint_safe_globals()

from . import datasets, engine, models  # noqa: E402,F401

__all__ = ['__version__']
