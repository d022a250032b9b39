from .dpal_hooks import (BadImageLoggerHook, FiniteLossHook,
                         RouterLossScheduleHook)
from .positive_ratio_hook import PositiveRatioHook, training_positive_ratio
from .randomness_hook import ResumableRandomnessHook
from .schedule_check_hook import ScheduleCheckHook
from .self_correction_hook import SelfCorrectionHook
from .termination_hook import TerminatedBySignal, TerminationCheckpointHook

__all__ = [
    'FiniteLossHook', 'BadImageLoggerHook', 'RouterLossScheduleHook',
    'ResumableRandomnessHook', 'PositiveRatioHook', 'training_positive_ratio',
    'SelfCorrectionHook', 'ScheduleCheckHook', 'TerminationCheckpointHook',
    'TerminatedBySignal'
]
