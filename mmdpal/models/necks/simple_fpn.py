"""ViTDet's simple feature pyramid: multi-scale maps from one plain-ViT map."""
from typing import Sequence, Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor

from mmdpal.registry import MODELS


@MODELS.register_module()
class SimpleFeaturePyramid(BaseModule):
    """The simple feature pyramid of ViTDet, for a plain ViT in a detector.

    `Exploring Plain Vision Transformer Backbones for Object Detection
    <https://arxiv.org/abs/2203.16527>`_ builds the maps that FPN-style heads
    expect from the single stride-16 map of a plain ViT: two deconvolutions
    up-sample it to stride 4, one to stride 8, it is kept for stride 16 and
    max-pooled to stride 32; each level then goes through a 1x1 and a 3x3
    convolution, both followed by a channel LayerNorm. Levels beyond
    ``len(scale_factors)`` (``num_outs=5``: stride 64, for RPNs with five
    anchor strides such as CrowdDet's) max-pool the last one with kernel 1
    and stride 2, like ViTDet's ``LastLevelMaxPool`` and mmdet's ``FPN``.

    Args:
        in_channels (int): Channels of the backbone map (the ViT's width).
        out_channels (int): Channels of every output map.
        scale_factors (Sequence[float]): Resampling of each level relative to
            the input map; (4.0, 2.0, 1.0, 0.5) gives strides 4, 8, 16, 32
            from a stride-16 map. Defaults to (4.0, 2.0, 1.0, 0.5).
        num_outs (int): Number of output maps, at least
            ``len(scale_factors)``. Defaults to 5.
        norm_cfg (dict): Norm after the up-sampling deconvolution and after
            each convolution. Defaults to a channel LayerNorm (mmpretrain's
            ``LN2d``), which resolves from any registry scope.
        act_cfg (dict): Activation between the two deconvolutions of the
            stride-4 level. Defaults to GELU.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to Xavier (uniform) on the (de)convolutions.

    Returns (of ``forward``):
        tuple[Tensor]: ``num_outs`` maps (N, out_channels, H_i, W_i), finest
        first.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
        num_outs: int = 5,
        norm_cfg: dict = dict(type='mmpretrain.LN2d', eps=1e-6),
        act_cfg: dict = dict(type='GELU'),
        init_cfg=dict(
            type='Xavier',
            layer=['Conv2d', 'ConvTranspose2d'],
            distribution='uniform')
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_outs < len(scale_factors):
            raise ValueError(f'num_outs ({num_outs}) must be at least the '
                             f'number of scale_factors {tuple(scale_factors)}')
        self.scale_factors = tuple(scale_factors)
        self.num_outs = num_outs

        self.stages = nn.ModuleList()
        for scale in self.scale_factors:
            if scale == 4.0:
                dims = in_channels // 4
                layers = [
                    nn.ConvTranspose2d(in_channels, in_channels // 2, 2, 2),
                    build_norm_layer(norm_cfg, in_channels // 2)[1],
                    build_activation_layer(act_cfg),
                    nn.ConvTranspose2d(in_channels // 2, dims, 2, 2),
                ]
            elif scale == 2.0:
                dims = in_channels // 2
                layers = [nn.ConvTranspose2d(in_channels, dims, 2, 2)]
            elif scale == 1.0:
                dims = in_channels
                layers = []
            elif scale == 0.5:
                dims = in_channels
                layers = [nn.MaxPool2d(kernel_size=2, stride=2)]
            else:
                raise ValueError(f'scale_factor {scale} is not supported; '
                                 'choose from 4.0, 2.0, 1.0 and 0.5')
            layers += [
                ConvModule(
                    dims, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None),
                ConvModule(
                    out_channels,
                    out_channels,
                    3,
                    padding=1,
                    norm_cfg=norm_cfg,
                    act_cfg=None),
            ]
            self.stages.append(nn.Sequential(*layers))

    def forward(self, inputs: Tuple[Tensor]) -> Tuple[Tensor]:
        """Build the pyramid from the backbone's last map.

        Args:
            inputs (tuple[Tensor]): Backbone outputs; the last one, (N, C, H,
                W) at stride 16, is used (``mmpretrain.VisionTransformer``
                with ``out_type='featmap'`` returns one map per out index).

        Returns:
            tuple[Tensor]: ``num_outs`` maps, finest first.
        """
        x = inputs[-1]
        outs = [stage(x) for stage in self.stages]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)
