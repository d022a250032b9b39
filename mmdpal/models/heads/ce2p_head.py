"""The CE2P parsing head of the authors' LIP trainer (SCHP's AugmentCE2P on
a plain ViT), as an mmseg decode head."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from mmdpal.registry import MODELS

# every resampling of the head and its losses: bilinear, align_corners=True
_UP = dict(mode='bilinear', align_corners=True)


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int,
                 norm_cfg: dict) -> nn.Sequential:
    """Conv (no bias) + BN + ReLU: SCHP's ``InPlaceABNSync`` as the authors
    define it (networks/AugmentCE2P.py: BatchNorm2d + ReLU), with torch's
    default conv init (as theirs; mmcv's ConvModule would re-init)."""
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=kernel_size // 2,
            bias=False),
        build_norm_layer(norm_cfg, out_channels)[1], nn.ReLU(inplace=True))


class PSPContext(nn.Module):
    """SCHP's ``PSPModule``: pooled (1, 2, 3, 6) 1x1 branches, up-sampled and
    concatenated with the input, then a 3x3 conv."""

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 norm_cfg: dict,
                 sizes: Sequence[int] = (1, 2, 3, 6)):
        super().__init__()
        self.stages = nn.ModuleList([
            nn.Sequential(
                nn.AdaptiveAvgPool2d(size),
                *conv_bn_relu(in_channels, channels, 1, norm_cfg))
            for size in sizes
        ])
        self.bottleneck = conv_bn_relu(in_channels + len(sizes) * channels,
                                       channels, 3, norm_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        priors = [
            F.interpolate(stage(x), size=x.shape[2:], **_UP)
            for stage in self.stages
        ]
        return self.bottleneck(torch.cat(priors + [x], 1))


@MODELS.register_module()
class CE2PHead(BaseModule):
    """The authors' LIP head (Human-centric-Vision-Perception, HumanParsing/
    networks/vision_transformer.py ``VisionTransformerHP`` on top of its
    blocks, with SCHP's PSPModule, Decoder_Module and Edge_Module of
    networks/AugmentCE2P.py), fed the ViT's outputs after blocks 4, 8, 12
    (stride 16):

    - each input through its own new LayerNorm (theirs: ``self.norm[i]``,
      eps 1e-6, after blocks 4, 8, 12; the student's final norm is unused);
    - the block-4 map up-sampled 4x (stride 4);
    - parsing: PSP context of block 12 -> 256 channels, up-sampled to stride
      4, concatenated with block 4 (1x1 conv to ``low_channels``), two 1x1
      convs -> ``parsing_fea`` (256) -> class logits;
    - edge: a 1x1 conv of each input to ``edge_channels``, one shared 3x3
      conv to 2 logits per input, the three at stride 4 fused by a 1x1
      conv; ``edge_fea`` the three 1x1 features concatenated;
    - fusion: [parsing_fea, edge_fea] -> 1x1 conv 256 + BN + ReLU,
      Dropout2d(0.1), 1x1 conv -> class logits: the prediction.

    The losses are ``mmdpal.CE2PLoss`` (``loss_decode``); in SCHP cycles the
    data samples carry ``schp_parsing`` / ``schp_edge`` (the aggregated
    model's fused logits), set by ``mmdpal.SelfCorrectionHook``.

    Args:
        in_channels (int): Width of the ViT maps.
        num_classes (int): Parsing classes.
        norm_cfg (dict): BN of the convs (theirs: SyncBN with --syncbn).
        channels (int): PSP width. Defaults to 512.
        low_channels (int): Block-4 width in the decoder (theirs: 192 for
            ViT-Ti, ``Decoder_Module(ch2=192)``). Defaults to 192.
        edge_channels (int): Edge branch width (theirs: 192 for ViT-Ti).
            Defaults to 192.
        loss_decode (dict): Defaults to ``mmdpal.CE2PLoss``.
        init_cfg: Defaults to None: torch's default init, as theirs.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 norm_cfg: dict = dict(type='SyncBN'),
                 channels: int = 512,
                 low_channels: int = 192,
                 edge_channels: int = 192,
                 loss_decode: dict = dict(type='mmdpal.CE2PLoss'),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.out_channels = num_classes
        # read by mmseg's segmentor for its resizes of the prediction: all
        # of theirs use align_corners=True
        self.align_corners = True
        self.in_norms = nn.ModuleList(
            [nn.LayerNorm(in_channels, eps=1e-6) for _ in range(3)])
        self.context = PSPContext(in_channels, channels, norm_cfg)
        # parsing decoder (Decoder_Module)
        self.dec_context = conv_bn_relu(channels, 256, 1, norm_cfg)
        self.dec_low = conv_bn_relu(in_channels, low_channels, 1, norm_cfg)
        self.dec_fuse = nn.Sequential(
            *conv_bn_relu(256 + low_channels, 256, 1, norm_cfg),
            *conv_bn_relu(256, 256, 1, norm_cfg))
        self.parsing_cls = nn.Conv2d(256, num_classes, 1)
        # edge branch (Edge_Module)
        self.edge_convs = nn.ModuleList([
            conv_bn_relu(in_channels, edge_channels, 1, norm_cfg)
            for _ in range(3)
        ])
        self.edge_cls = nn.Conv2d(edge_channels, 2, 3, padding=1)
        self.edge_fuse = nn.Conv2d(2 * 3, 2, 1)
        # fusion
        self.fusion = nn.Sequential(
            *conv_bn_relu(256 + 3 * edge_channels, 256, 1, norm_cfg),
            nn.Dropout2d(0.1), nn.Conv2d(256, num_classes, 1))
        self.loss_decode = MODELS.build(loss_decode)

    def forward(
        self, inputs: Sequence[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Args:
            inputs: The ViT maps after blocks 4, 8, 12, each (B, C, h, w).

        Returns:
            tuple: parsing logits, fused parsing logits (the prediction),
            both (B, num_classes, 4h, 4w), and edge logits (B, 2, 4h, 4w).
        """
        x1, x2, x3 = [
            norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            for norm, x in zip(self.in_norms, inputs)
        ]
        x1 = F.interpolate(x1, scale_factor=4, **_UP)
        size = x1.shape[2:]
        # parsing
        context = F.interpolate(
            self.dec_context(self.context(x3)), size=size, **_UP)
        parsing_fea = self.dec_fuse(torch.cat([context, self.dec_low(x1)], 1))
        parsing = self.parsing_cls(parsing_fea)
        # edge
        edge_feas, edges = [], []
        for conv, x in zip(self.edge_convs, (x1, x2, x3)):
            fea = conv(x)
            edges.append(F.interpolate(self.edge_cls(fea), size=size, **_UP))
            edge_feas.append(F.interpolate(fea, size=size, **_UP))
        edge = self.edge_fuse(torch.cat(edges, 1))
        fused = self.fusion(torch.cat([parsing_fea] + edge_feas, 1))
        return parsing, fused, edge

    def loss(self,
             inputs: Sequence[torch.Tensor],
             batch_data_samples: list,
             train_cfg=None) -> dict:
        parsing, fused, edge = self(inputs)
        labels = torch.stack([
            s.gt_sem_seg.data.squeeze(0) for s in batch_data_samples
        ]).long()  # (B, H, W)
        soft = None
        if 'schp_parsing' in batch_data_samples[0]:
            soft = (torch.stack([s.schp_parsing for s in batch_data_samples]),
                    torch.stack([s.schp_edge for s in batch_data_samples]),
                    batch_data_samples[0].schp_cycle)
        return self.loss_decode([parsing, fused], edge, labels, soft)

    def predict(self,
                inputs: Sequence[torch.Tensor],
                batch_img_metas: List[dict],
                test_cfg=None) -> torch.Tensor:
        """The fused logits (B, num_classes, H, W) at the size of the padded
        batch, as mmseg's decode heads (its segmentor then removes the
        padding)."""
        meta = batch_img_metas[0]
        size = meta['pad_shape'][:2] if 'pad_shape' in meta else \
            meta['img_shape']
        return F.interpolate(self(inputs)[1], size=size, **_UP)
