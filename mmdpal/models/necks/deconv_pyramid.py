"""The authors' CrowdDet pyramid from one plain-ViT map, as a neck."""
from typing import Tuple

import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmdpal.registry import MODELS


@MODELS.register_module()
class DeconvPyramid(BaseModule):
    """The four maps that the authors' detection ViT builds inside itself
    (``person_detection/mmdet/models/backbones/vision_transformer.py`` of
    ``stoa-xh91/Human-centric-Vision-Perception``: ``up0``, ``up1``,
    identity, ``down2``) from its one stride-16 map of C channels, for an
    mmdet ``FPN`` after it (``neck=[dict(type='mmdpal.DeconvPyramid', ...),
    dict(type='FPN', in_channels=[C // 4, C // 2, C, C], ...)]``):

    - stride 4, C/4: 2x2 deconvolution to C/2, BatchNorm, GELU, 2x2
      deconvolution to C/4;
    - stride 8, C/2: one 2x2 deconvolution;
    - stride 16, C: the map itself;
    - stride 32, C: a 3x3 convolution of stride 2 (padding 1).

    No norm after the levels (FPN's lateral convolutions follow), unlike
    ViTDet's simple pyramid (:class:`SimpleFeaturePyramid`). The parameter
    names are theirs (``up0.0`` ... ``down2.0``) less the ``backbone.``
    prefix. Initialization as theirs: Xavier (uniform) weights of the
    (de)convolutions, their biases left at PyTorch's default, BatchNorm
    1 / 0 (``init_cfg=None``; another ``init_cfg`` replaces it).

    Args:
        in_channels (int): Channels C of the backbone map (the ViT's width).
        init_cfg (dict, optional): Defaults to None (the authors' init).

    Returns (of ``forward``):
        tuple[Tensor]: 4 maps (N, C/4, 4h, 4w), (N, C/2, 2h, 2w),
        (N, C, h, w), (N, C, h/2, w/2), from the last input map (N, C, h, w).
    """

    def __init__(self, in_channels: int, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if in_channels % 4:
            raise ValueError(f'in_channels={in_channels} must be a multiple '
                             'of 4 (the stride-4 level has in_channels // 4)')
        c = in_channels
        self.up0 = nn.Sequential(
            nn.ConvTranspose2d(c, c // 2, 2, 2), nn.BatchNorm2d(c // 2),
            nn.GELU(), nn.ConvTranspose2d(c // 2, c // 4, 2, 2))
        self.up1 = nn.Sequential(nn.ConvTranspose2d(c, c // 2, 2, 2))
        self.down2 = nn.Sequential(nn.Conv2d(c, c, 3, 2, 1))

    def init_weights(self) -> None:
        if self.init_cfg is not None:
            super().init_weights()
            return
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1.0)
                nn.init.constant_(m.bias, 0)

    def forward(self, inputs: Tuple[Tensor]) -> Tuple[Tensor]:
        x = inputs[-1]
        return self.up0(x), self.up1(x), x, self.down2(x)
