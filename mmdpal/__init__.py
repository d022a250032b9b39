"""mmdpal: DPAL distillation pretraining as an OpenMMLab plugin.

Importing mmdpal registers its models, datasets, transforms and hooks in the
``mmdpal`` registry scope (a child of mmpretrain's) and allow-lists the types
of mmengine runner checkpoints for ``torch.load(weights_only=True)``.
"""
import warnings

import mmcv
import mmengine
from mmengine.utils import digit_version

from .version import __version__


def _check_version(module, lower: str, upper: str) -> None:
    """The supported range of a dependency: the verified version up to the
    next minor release (requirements/runtime.txt, mminstall.txt)."""
    assert (digit_version(lower) <= digit_version(module.__version__) <
            digit_version(upper)), (
                f'{module.__name__}=={module.__version__} is used but '
                f'incompatible with mmdpal {__version__}: please install '
                f'{module.__name__}>={lower}, <{upper} (bash '
                'tools/install.sh does).')


# mmcv may be built without ops (pretraining: mmcv-lite) or with them
_check_version(mmcv, '2.1.0', '2.2.0')
_check_version(mmengine, '0.10.7', '0.11.0')

# Without ops (the --pretrain-only install), mmcv's transformer bricks warn
# on import that they miss a compiled op, which pretraining never uses.
# That one message is hidden while mmdpal imports them; no filter remains.
with warnings.catch_warnings():
    warnings.filterwarnings(
        'ignore',
        message='Fail to import ``MultiScaleDeformableAttention``',
        category=UserWarning)
    import mmcv.cnn.bricks.transformer  # noqa: E402,F401

import mmpretrain  # noqa: E402
from mmpretrain.utils import \
    register_all_modules as _register_mmpretrain  # noqa: E402

_check_version(mmpretrain, '1.2.0', '1.3.0')

from .utils import register_checkpoint_safe_globals  # noqa: E402

# mmdpal's registries are children of mmpretrain's: a child finds its
# parents' modules only once they are imported.
_register_mmpretrain(init_default_scope=False)
register_checkpoint_safe_globals()

from . import datasets, engine, evaluation, models  # noqa: E402,F401

__all__ = ['__version__']
