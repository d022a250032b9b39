from .lup import LUPersonDataset
from .utils import scan_images
from .transforms import *  # noqa: F401,F403

__all__ = ['LUPersonDataset', 'scan_images']
