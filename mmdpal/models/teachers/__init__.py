from .shape_masks import pca_batch_shape_mask, pca_shape_mask
from .vit_teacher import TeacherTargets, ViTTeacher

__all__ = [
    'ViTTeacher', 'TeacherTargets', 'pca_shape_mask', 'pca_batch_shape_mask'
]
