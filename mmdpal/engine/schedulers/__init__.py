from .schedule_check import clipped_schedulers
from .timm_cosine_lr import TimmCosineLR, timm_cosine_lr

__all__ = ['TimmCosineLR', 'timm_cosine_lr', 'clipped_schedulers']
