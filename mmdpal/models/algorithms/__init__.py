from .dpal import DPALDistiller
from .ema import StudentCosineEMA
from .saip import SAIP

__all__ = ['DPALDistiller', 'StudentCosineEMA', 'SAIP']
