from .base import PATTERNS, BasePatternDecoder, DecoderOutput
from .dynamic_pattern_decoder import DynamicPatternDecoder, ExpertGenerator
from .saip_decoders import CSRDecoder, CSSDecoder
from .variants import LinearDecoder, MoEDecoder, TransformerDecoder

__all__ = [
    'BasePatternDecoder', 'DecoderOutput', 'PATTERNS', 'DynamicPatternDecoder',
    'ExpertGenerator', 'LinearDecoder', 'TransformerDecoder', 'MoEDecoder',
    'CSRDecoder', 'CSSDecoder'
]
