from .onnx_reader import read_dinov2_onnx  # noqa: F401
from .vit_teacher import TeacherTargets, ViTTeacher, pca_shape_mask

__all__ = ['ViTTeacher', 'TeacherTargets', 'pca_shape_mask']
