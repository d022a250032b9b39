from .parsing_tta import ParsingTTAModel

__all__ = ['ParsingTTAModel']
