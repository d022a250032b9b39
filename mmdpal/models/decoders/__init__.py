from .base import PATTERNS, DecoderOutput
from .dynamic_pattern_decoder import DynamicPatternDecoder, ExpertGenerator
from .variants import LinearDecoder, MoEDecoder, TransformerDecoder

__all__ = [
    'DecoderOutput', 'PATTERNS', 'DynamicPatternDecoder', 'ExpertGenerator',
    'LinearDecoder', 'TransformerDecoder', 'MoEDecoder'
]
