from .bnneck_reid_head import BNNeckReIDHead
from .ce2p_head import CE2PHead
from .csm_head import CSMHead

__all__ = ['BNNeckReIDHead', 'CE2PHead', 'CSMHead']
