from .resampled_pos_vit import ResampledPosViT

__all__ = ['ResampledPosViT']
