from .copy_paste import CopyPasteMultiPerson
from .loading import BadImageError, LoadPersonImage
from .view_augment import ViewAugment

__all__ = [
    'LoadPersonImage', 'BadImageError', 'CopyPasteMultiPerson', 'ViewAugment'
]
