import os
import os.path as osp
from typing import List

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def scan_images(folder: str) -> List[str]:
    """All image files under ``folder`` (recursive), relative, sorted."""
    found = []
    for root, _, files in os.walk(folder, followlinks=True):
        for name in files:
            if name.lower().endswith(IMG_EXTENSIONS):
                found.append(osp.relpath(osp.join(root, name), folder))
    return sorted(found)
