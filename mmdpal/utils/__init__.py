from .checkpoint import (load_third_party_checkpoint,
                         register_checkpoint_safe_globals)
from .setup_env import register_all_modules

__all__ = [
    'register_all_modules', 'register_checkpoint_safe_globals',
    'load_third_party_checkpoint'
]
