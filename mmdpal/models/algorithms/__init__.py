from .base import BaseDistiller
from .dpal import DPALDistiller
from .ema import StudentCosineEMA
from .proteus import ProteusDistiller
from .tinymim import TinyMIMDistiller
from .vitkd import ViTKDDistiller

__all__ = [
    'BaseDistiller', 'DPALDistiller', 'ProteusDistiller', 'StudentCosineEMA',
    'TinyMIMDistiller', 'ViTKDDistiller'
]
