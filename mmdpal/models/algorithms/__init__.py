from .dpal import DPALDistiller

__all__ = ['DPALDistiller']
