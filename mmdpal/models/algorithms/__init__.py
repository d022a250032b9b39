from .base import BaseDistiller
from .dpal import DPALDistiller
from .ema import StudentCosineEMA
from .vitkd import ViTKDDistiller

__all__ = [
    'BaseDistiller', 'DPALDistiller', 'StudentCosineEMA', 'ViTKDDistiller'
]
