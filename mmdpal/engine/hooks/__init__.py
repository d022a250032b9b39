from .dpal_hooks import (BadImageLoggerHook, FiniteLossHook,
                         RouterLossScheduleHook)

__all__ = ['FiniteLossHook', 'BadImageLoggerHook', 'RouterLossScheduleHook']
