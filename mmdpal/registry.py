"""mmdpal's registries: one scope, ``mmdpal``, each a child of mmpretrain's.

Because they are children, a config in the ``mmdpal`` scope builds both
mmdpal's own parts (``type='DPALDistiller'``) and anything of mmpretrain
(``type='VisionTransformer'``, ``type='mmpretrain.VisionTransformer'``), and
every mmpretrain/mmengine optimizer, scheduler, hook and metric.
"""
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import Registry
from mmpretrain.registry import DATA_SAMPLERS as MMPRETRAIN_DATA_SAMPLERS
from mmpretrain.registry import DATASETS as MMPRETRAIN_DATASETS
from mmpretrain.registry import EVALUATORS as MMPRETRAIN_EVALUATORS
from mmpretrain.registry import HOOKS as MMPRETRAIN_HOOKS
from mmpretrain.registry import LOG_PROCESSORS as MMPRETRAIN_LOG_PROCESSORS
from mmpretrain.registry import LOOPS as MMPRETRAIN_LOOPS
from mmpretrain.registry import METRICS as MMPRETRAIN_METRICS
from mmpretrain.registry import MODEL_WRAPPERS as MMPRETRAIN_MODEL_WRAPPERS
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmpretrain.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMPRETRAIN_OPTIM_WRAPPER_CONSTRUCTORS
from mmpretrain.registry import OPTIM_WRAPPERS as MMPRETRAIN_OPTIM_WRAPPERS
from mmpretrain.registry import OPTIMIZERS as MMPRETRAIN_OPTIMIZERS
from mmpretrain.registry import PARAM_SCHEDULERS as MMPRETRAIN_PARAM_SCHEDULERS
from mmpretrain.registry import RUNNERS as MMPRETRAIN_RUNNERS
from mmpretrain.registry import TRANSFORMS as MMPRETRAIN_TRANSFORMS
from mmpretrain.registry import VISBACKENDS as MMPRETRAIN_VISBACKENDS
from mmpretrain.registry import VISUALIZERS as MMPRETRAIN_VISUALIZERS
from mmpretrain.registry import \
    WEIGHT_INITIALIZERS as MMPRETRAIN_WEIGHT_INITIALIZERS

RUNNERS = Registry('runner', parent=MMPRETRAIN_RUNNERS)
LOOPS = Registry('loop', parent=MMPRETRAIN_LOOPS)
HOOKS = Registry('hook', parent=MMPRETRAIN_HOOKS, locations=['mmdpal.engine'])
LOG_PROCESSORS = Registry('log processor', parent=MMPRETRAIN_LOG_PROCESSORS)
OPTIMIZERS = Registry('optimizer', parent=MMPRETRAIN_OPTIMIZERS)
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMPRETRAIN_OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMPRETRAIN_OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMPRETRAIN_PARAM_SCHEDULERS)

DATASETS = Registry(
    'dataset', parent=MMPRETRAIN_DATASETS, locations=['mmdpal.datasets'])
DATA_SAMPLERS = Registry('data sampler', parent=MMPRETRAIN_DATA_SAMPLERS)
TRANSFORMS = Registry(
    'transform', parent=MMPRETRAIN_TRANSFORMS, locations=['mmdpal.datasets'])

MODELS = Registry(
    'model', parent=MMPRETRAIN_MODELS, locations=['mmdpal.models'])
MODEL_WRAPPERS = Registry('model_wrapper', parent=MMPRETRAIN_MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = Registry(
    'weight initializer',
    parent=MMPRETRAIN_WEIGHT_INITIALIZERS,
    locations=['mmdpal.models'])

METRICS = Registry('metric', parent=MMPRETRAIN_METRICS)
# mmpretrain has no function registry: mmdpal's is mmengine's child
FUNCTIONS = Registry(
    'function', parent=MMENGINE_FUNCTIONS, locations=['mmdpal.datasets'])
EVALUATORS = Registry("evaluator", parent=MMPRETRAIN_EVALUATORS)
VISUALIZERS = Registry('visualizer', parent=MMPRETRAIN_VISUALIZERS)
VISBACKENDS = Registry('vis_backend', parent=MMPRETRAIN_VISBACKENDS)


def _reachable_from_every_scope(*registries: Registry) -> None:
    """Let ``type='mmdpal.X'`` resolve from any scope (mmpose, mmdet, mmseg).

    mmengine's ``Registry.get('mmdpal.X')``, called on a registry of another
    scope (e.g. mmdet's MODELS while a CrowdDet config builds its neck), looks
    for the ``mmdpal`` scope among that registry's children and then among the
    *direct* children of the root registry only; it never walks down the
    tree. mmdpal's registries are children of mmpretrain's, i.e. grandchildren
    of the root, so that lookup fails ("mmdpal.X is not in the mmdet::model
    registry"). Listing each of them also under the root makes the lookup
    work; their parent stays mmpretrain's, so unscoped names in the mmdpal
    scope still fall back to mmpretrain and mmengine.
    """
    for registry in registries:
        root = registry._get_root_registry()
        if root.children.get(registry.scope) is None:
            root._add_child(registry)


_reachable_from_every_scope(RUNNERS, LOOPS, HOOKS, LOG_PROCESSORS, OPTIMIZERS,
                            OPTIM_WRAPPERS, OPTIM_WRAPPER_CONSTRUCTORS,
                            PARAM_SCHEDULERS, DATASETS, DATA_SAMPLERS,
                            TRANSFORMS, MODELS, MODEL_WRAPPERS,
                            WEIGHT_INITIALIZERS, METRICS, EVALUATORS,
                            VISUALIZERS, VISBACKENDS, FUNCTIONS)
