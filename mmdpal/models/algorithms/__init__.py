from .base import BaseDistiller
from .dpal import DPALDistiller
from .ema import StudentCosineEMA
from .maskedkd import MaskedKDDistiller
from .proteus import ProteusDistiller
from .saip import SAIP
from .tinymim import TinyMIMDistiller
from .vitkd import ViTKDDistiller

__all__ = [
    'BaseDistiller', 'DPALDistiller', 'MaskedKDDistiller', 'ProteusDistiller',
    'SAIP', 'StudentCosineEMA', 'TinyMIMDistiller', 'ViTKDDistiller'
]
