from .lup import LUPersonDataset
from .transforms import *  # noqa: F401,F403
from .utils import scan_images

__all__ = ['LUPersonDataset', 'scan_images']
