from .strict_pretrained import StrictPretrained

__all__ = ['StrictPretrained']
