from .global_align import GlobalAlignLoss
from .local_align import LocalAlignLoss
from .relation_align import RelationAlignLoss, token_relation

__all__ = [
    'GlobalAlignLoss', 'LocalAlignLoss', 'RelationAlignLoss', 'token_relation'
]
