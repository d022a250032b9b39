"""ReID batches of any size for mmdet's ``BaseReID``."""
from typing import Optional

import torch
from mmengine.model import BaseDataPreprocessor

from mmdpal.registry import MODELS


@MODELS.register_module()
class ReIDGroupsPreprocessor(BaseDataPreprocessor):
    """Stack the image groups of a ReID batch into one batch of images.

    mmdet's ``PackReIDInputs`` packs every item as a group of images
    (N, C, H, W): N = 1 for a test image, P x K for a training batch of
    ``triplet_sampler``. mmdet's ``ReIDDataPreprocessor`` stacks the items
    into (B, N, C, H, W), which mmdet's ``BaseReID`` accepts only for B = 1
    (it asserts it and drops the axis), so evaluation ran one image per
    iteration. This preprocessor concatenates the groups into
    (B * N, C, H, W) instead: evaluation runs at any batch size, each data
    sample keeping its own image (one per test item) and labels (P x K per
    training item, read in order by mmdet's ``LinearReIDHead``).

    Images are normalised in the pipeline (mmdpal's ReID configs), so
    nothing else is done here but moving inputs and data samples to the
    model's device.

    Args:
        batch_augments (dict, optional): What mmpretrain's classifiers pass
            on from ``train_cfg.augments``; none is supported (None).
    """

    def __init__(self, batch_augments: Optional[dict] = None) -> None:
        if batch_augments is not None:
            raise ValueError(
                'ReIDGroupsPreprocessor: batch augmentations (mixup, cutmix: '
                'model.train_cfg.augments) are not supported for ReID; '
                'remove them')
        super().__init__()

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, torch.Tensor):  # default_collate: stacked
            groups = list(inputs) if inputs.dim() == 5 else [inputs]
        else:  # pseudo_collate: a list of (N, C, H, W) or (C, H, W)
            groups = [x if x.dim() == 4 else x[None] for x in inputs]
        shapes = {tuple(g.shape[1:]) for g in groups}
        if len(shapes) != 1:
            raise ValueError(
                f'ReIDGroupsPreprocessor: images of different sizes in one '
                f'batch {sorted(shapes)}: resize them to one size in the '
                'pipeline')
        return dict(
            inputs=torch.cat(groups).float(),
            data_samples=data.get('data_samples'))
