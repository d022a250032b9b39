from .copy_paste import CopyPasteMultiPerson
from .loading import BadImageError, LoadPersonImage

__all__ = ['LoadPersonImage', 'BadImageError', 'CopyPasteMultiPerson']
