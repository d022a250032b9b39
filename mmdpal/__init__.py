"""mmdpal: DPAL distillation pretraining as an OpenMMLab plugin.

Importing mmdpal registers its models, datasets, transforms and hooks in the
``mmdpal`` registry scope (a child of mmpretrain's) and allow-lists the types
of mmengine runner checkpoints for ``torch.load(weights_only=True)``.
"""
from mmpretrain.utils import register_all_modules as _register_mmpretrain

from .utils import register_checkpoint_safe_globals
from .version import __version__

# mmdpal's registries are children of mmpretrain's: a child finds its
# parents' modules only once they are imported.
_register_mmpretrain(init_default_scope=False)
register_checkpoint_safe_globals()

from . import datasets, engine, models  # noqa: E402,F401

__all__ = ['__version__']
