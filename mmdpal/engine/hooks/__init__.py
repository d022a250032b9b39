from .dpal_hooks import (BadImageLoggerHook, FiniteLossHook,
                         RouterLossScheduleHook)
from .randomness_hook import ResumableRandomnessHook

__all__ = [
    'FiniteLossHook', 'BadImageLoggerHook', 'RouterLossScheduleHook',
    'ResumableRandomnessHook'
]
