from .global_align import GlobalAlignLoss
from .local_align import LocalAlignLoss
from .relation_align import RelationAlignLoss, relation_kl, token_relation

__all__ = [
    'GlobalAlignLoss', 'LocalAlignLoss', 'RelationAlignLoss', 'relation_kl',
    'token_relation'
]
