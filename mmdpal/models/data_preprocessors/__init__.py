from .reid import ReIDGroupsPreprocessor

__all__ = ['ReIDGroupsPreprocessor']
