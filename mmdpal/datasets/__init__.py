from .attributes import PA100K, PETA
from .lup import LUPersonDataset
from .reid import MSMT17, Market1501
from .samplers import ResumableSampler
from .transforms import *  # noqa: F401,F403
from .utils import scan_images

__all__ = [
    'LUPersonDataset', 'Market1501', 'MSMT17', 'PA100K', 'PETA',
    'ResumableSampler', 'scan_images'
]
