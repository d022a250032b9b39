from .checkpoint import (UnsafeCheckpointError, load_checkpoint_allowing,
                         load_third_party_checkpoint,
                         register_checkpoint_safe_globals)
from .dist import CPUDistributedDataParallel, setup_cpu_distributed
from .job import run_job
from .quiet import silence_stack_deprecations
from .randomness import random_stream, seed_global_rngs
from .setup_env import register_all_modules

__all__ = [
    'register_all_modules', 'register_checkpoint_safe_globals',
    'load_third_party_checkpoint', 'load_checkpoint_allowing',
    'UnsafeCheckpointError', 'setup_cpu_distributed',
    'CPUDistributedDataParallel', 'random_stream', 'seed_global_rngs',
    'run_job', 'silence_stack_deprecations'
]
