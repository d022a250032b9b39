from .dpal import DPALDistiller
from .ema import StudentCosineEMA

__all__ = ['DPALDistiller', 'StudentCosineEMA']
