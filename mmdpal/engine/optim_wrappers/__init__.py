from .bf16_autocast import BF16AutocastOptimWrapper
from .layer_decay import ViTLayerDecayOptimWrapperConstructor

__all__ = ['BF16AutocastOptimWrapper', 'ViTLayerDecayOptimWrapperConstructor']
