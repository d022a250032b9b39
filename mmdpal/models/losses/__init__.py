from .ce2p_loss import CE2PLoss, parsing_edges, soft_target_kl
from .global_align import GlobalAlignLoss
from .local_align import LocalAlignLoss
from .positive_ratio_bce import PositiveRatioBCELoss, positive_ratio_weights
from .relation_align import RelationAlignLoss, relation_kl, token_relation
from .saip_losses import AttentionKLLoss, CSMLoss, CSRLoss, CSSLoss
from .soft_margin_triplet import SoftMarginTripletLoss

__all__ = [
    'GlobalAlignLoss', 'LocalAlignLoss', 'RelationAlignLoss', 'relation_kl',
    'token_relation', 'PositiveRatioBCELoss', 'positive_ratio_weights',
    'SoftMarginTripletLoss', 'CE2PLoss', 'parsing_edges', 'soft_target_kl',
    'CSMLoss', 'AttentionKLLoss', 'CSRLoss', 'CSSLoss'
]
