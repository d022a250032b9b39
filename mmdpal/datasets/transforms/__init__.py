from .copy_paste import CopyPasteMultiPerson
from .loading import BadImageError, LoadPersonImage
from .schp_affine import (AlignCornersRescale, SCHPAffineCrop, SCHPAffineFit,
                          fitted_box_width, person_affine_matrix)
from .view_augment import ViewAugment

__all__ = [
    'LoadPersonImage', 'BadImageError', 'CopyPasteMultiPerson', 'ViewAugment',
    'SCHPAffineCrop', 'SCHPAffineFit', 'AlignCornersRescale',
    'fitted_box_width', 'person_affine_matrix'
]
