"""ViTPose's layer-wise learning-rate decay with the authors' quirk as a
switch."""
from typing import List, Optional

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor

from mmdpal.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ViTLayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmpose's ``LayerDecayOptimWrapperConstructor`` (ViTPose's layer-wise
    lr decay, the same parameter groups), where whether the ViT's blocks are
    decayed is one switch, ``scale_blocks``.

    Groups, as mmpose's: with ``N = num_layers + 2``, the class token,
    position and patch embeddings are layer 0, block ``i`` of
    ``backbone.layers`` is layer ``i + 1``, everything else (final norm,
    head) is layer ``N - 1``; a parameter of layer ``k`` has the learning
    rate ``base_lr * layer_decay_rate ** (N - 1 - k)``. 1-D parameters,
    biases and ``pos_embed`` have no weight decay, all others the
    optimizer's.

    ``scale_blocks=False`` is the authors' fine-tuning, a quirk reproduced
    on purpose: mmpose's ``get_num_layer_for_vit`` recognizes blocks by the
    name ``backbone.layers.N`` (mmpretrain's), and their ViT names them
    ``backbone.blocks.N``, so their blocks fall through to layer ``N - 1``
    with the head (lr scale 1) and only the embeddings are scaled (by
    ``layer_decay_rate ** (N - 1)``, e.g. 0.75 ** 13 = 0.024). This is the
    one place that quirk lives; ``scale_blocks=True`` is ViTPose's intent
    and gives exactly mmpose's groups.

    ``paramwise_cfg`` takes ``num_layers``, ``layer_decay_rate`` and
    ``scale_blocks`` (default True) and nothing else: mmpose's constructor
    silently ignores ``custom_keys`` and the other keys of mmengine's
    default constructor, this one refuses them.
    """

    KEYS = ('num_layers', 'layer_decay_rate', 'scale_blocks')

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        paramwise_cfg = dict(paramwise_cfg or {})
        unknown = sorted(set(paramwise_cfg) - set(self.KEYS))
        if unknown or 'num_layers' not in paramwise_cfg:
            raise ValueError(
                'ViTLayerDecayOptimWrapperConstructor: paramwise_cfg takes '
                f'{list(self.KEYS)} (num_layers required), got '
                f'{sorted(paramwise_cfg)}; replace the base\'s with '
                'paramwise_cfg=dict(_delete_=True, ...)')
        super().__init__(optim_wrapper_cfg, None)
        self.num_layers = int(paramwise_cfg['num_layers']) + 2
        self.layer_decay_rate = float(
            paramwise_cfg.get('layer_decay_rate', 0.5))
        self.scale_blocks = bool(paramwise_cfg.get('scale_blocks', True))
        self.paramwise_cfg = paramwise_cfg

    def layer_id(self, name: str) -> int:
        """mmpose's ``get_num_layer_for_vit``, blocks only when
        ``scale_blocks``."""
        if name in ('backbone.cls_token', 'backbone.mask_token',
                    'backbone.pos_embed'):
            return 0
        if name.startswith('backbone.patch_embed'):
            return 0
        if self.scale_blocks and name.startswith('backbone.layers'):
            return int(name.split('.')[2]) + 1
        return self.num_layers - 1

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   lr: Optional[float] = None) -> None:
        groups = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue  # frozen weights
            if (len(param.shape) == 1 or name.endswith('.bias')
                    or 'pos_embed' in name):
                kind, weight_decay = 'no_decay', 0.
            else:
                kind, weight_decay = 'decay', self.base_wd
            layer = self.layer_id(name)
            group_name = f'layer_{layer}_{kind}'
            if group_name not in groups:
                scale = self.layer_decay_rate**(self.num_layers - layer - 1)
                groups[group_name] = dict(
                    weight_decay=weight_decay,
                    params=[],
                    param_names=[],
                    lr_scale=scale,
                    group_name=group_name,
                    lr=scale * self.base_lr)
            groups[group_name]['params'].append(param)
            groups[group_name]['param_names'].append(name)
        params.extend(groups.values())
