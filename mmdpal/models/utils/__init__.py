from .arch import (ARCH_KEY, arch_differences, backbone_arch,
                   layer_cfgs_expression, recorded_arch)
from .state_dict import (StateDictMismatchError, check_state_dict_fits,
                         pos_embed_layout)
from .strict_pretrained import ArchitectureMismatchError, StrictPretrained

__all__ = [
    'StrictPretrained', 'ArchitectureMismatchError', 'StateDictMismatchError',
    'check_state_dict_fits', 'pos_embed_layout', 'ARCH_KEY', 'backbone_arch',
    'arch_differences', 'layer_cfgs_expression', 'recorded_arch'
]
