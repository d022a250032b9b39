from .deconv_pyramid import DeconvPyramid
from .simple_fpn import SimpleFeaturePyramid

__all__ = ['DeconvPyramid', 'SimpleFeaturePyramid']
