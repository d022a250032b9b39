import os
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.dataset import default_collate

from mmdpal.registry import FUNCTIONS

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def scan_images(folder: str) -> List[str]:
    """All image files under ``folder`` (recursive), relative, sorted."""
    found = []
    for root, _, files in os.walk(folder, followlinks=True):
        for name in files:
            if name.lower().endswith(IMG_EXTENSIONS):
                found.append(osp.relpath(osp.join(root, name), folder))
    return sorted(found)


def layout_error(dataset: str, path: str, problem: str, layout: str) -> str:
    """The one-line error of a dataset whose file or folder ``path`` is not
    as released: what is wrong and the layout ``dataset`` expects."""
    return (f'{dataset}: {path!r} {problem}; expected the released layout: '
            f'{layout}')


@FUNCTIONS.register_module()
def multi_view_collate(data_batch: Sequence, _scope_: Optional[str] = None):
    """mmengine's ``default_collate``: every view stacked into one
    (B, 3, H, W) tensor, as mmpretrain's ``SelfSupDataPreprocessor`` wants.

    ``_scope_`` is accepted and ignored: mmengine 0.10 adds it to every typed
    dict of a config inherited with ``_base_ = 'mmdpal::...'`` and its runner
    passes the ``collate_fn`` dict on as arguments, which would make
    ``collate_fn=dict(type='default_collate')`` fail in another repo's tools.
    """
    return default_collate(data_batch)
