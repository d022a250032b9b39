from .state_dict import (StateDictMismatchError, check_state_dict_fits,
                         pos_embed_layout)
from .strict_pretrained import StrictPretrained

__all__ = [
    'StrictPretrained', 'StateDictMismatchError', 'check_state_dict_fits',
    'pos_embed_layout'
]
