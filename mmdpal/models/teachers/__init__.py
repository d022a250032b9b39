from .vit_teacher import (TeacherTargets, ViTTeacher, pca_batch_shape_mask,
                          pca_shape_mask)

__all__ = [
    'ViTTeacher', 'TeacherTargets', 'pca_shape_mask', 'pca_batch_shape_mask'
]
