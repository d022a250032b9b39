"""The CE2P parsing head of the authors' LIP trainer (SCHP's AugmentCE2P on
a plain ViT), as an mmseg decode head."""
from typing import List, Optional, Sequence, Tuple

import numpy as np
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


def fit_back(logits: torch.Tensor, matrix, fit_shape: Sequence[int],
             ori_shape: Sequence[int]) -> torch.Tensor:
    """Logits of a fitted crop (``mmdpal.SCHPAffineFit``) back on the
    original image, as the authors' LIP evaluation maps its prediction back
    (HumanParsing/evaluate.py ``multi_scale_testing`` and utils/transforms.py
    ``transform_parsing``): resized to the crop size (bilinear,
    ``align_corners=True``, their ``interp``), then each original pixel
    takes the crop pixel nearest to where ``matrix`` maps it (their
    ``cv2.warpAffine(..., INTER_NEAREST)`` with the inverse transform,
    halves rounded up as cv2 does), zeros outside the crop. Nearest
    sampling commutes with the argmax and with averaging, so the argmax of
    these logits (averaged over scales and flips) is their warped-back
    prediction; outside the crop all logits are 0 and the argmax is class
    0, their border value.

    Args:
        logits (Tensor): (B, K, h, w) logits of the crop (any stride).
        matrix (array-like): (2, 3) original -> crop pixel coordinates.
        fit_shape (tuple): (h, w) of the crop.
        ori_shape (tuple): (h, w) of the original image.

    Returns:
        Tensor: (B, K, *ori_shape).
    """
    fit_h, fit_w = fit_shape
    logits = F.interpolate(logits, size=tuple(fit_shape), **_UP)
    m = torch.as_tensor(np.asarray(matrix), dtype=torch.float64)
    ys, xs = torch.meshgrid(
        torch.arange(ori_shape[0], dtype=torch.float64),
        torch.arange(ori_shape[1], dtype=torch.float64),
        indexing='ij')
    # the nearest crop pixel, halves rounded up as cv2's INTER_NEAREST
    u = torch.floor(m[0, 0] * xs + m[0, 1] * ys + m[0, 2] + 0.5).long()
    v = torch.floor(m[1, 0] * xs + m[1, 1] * ys + m[1, 2] + 0.5).long()
    inside = (u >= 0) & (u < fit_w) & (v >= 0) & (v < fit_h)
    picked = logits[:, :, v.clamp(0, fit_h - 1), u.clamp(0, fit_w - 1)]
    return picked * inside.to(logits)


@MODELS.register_module()
class CE2PHead(BaseModule):
    """The authors' LIP head (Human-centric-Vision-Perception, HumanParsing/
    networks/vision_transformer.py ``VisionTransformerHP`` on top of its
    blocks, with SCHP's PSPModule, Decoder_Module and Edge_Module of
    networks/AugmentCE2P.py), fed the ViT's outputs after blocks 4, 8, 12
    (stride 16), already normed: theirs are normed in the backbone's stream
    (``self.norm[i]`` after blocks 4, 8, 12, whose output the next block
    takes), i.e. ``mmdpal.ResampledPosViT(tap_norm='replace')``; the head
    norms nothing:

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
            inputs: The normed ViT maps after blocks 4, 8, 12, each
                (B, C, h, w).

        Returns:
            tuple: parsing logits, fused parsing logits (the prediction),
            both (B, num_classes, 4h, 4w), and edge logits (B, 2, 4h, 4w).
        """
        x1, x2, x3 = inputs
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
        padding); for crops of ``mmdpal.SCHPAffineFit`` (``fit_matrix`` in
        the metas), on the original image instead (:func:`fit_back`; the
        segmentor's resize to ``ori_shape`` is then the identity, and its
        flip back commutes with the centred fit)."""
        fused = self(inputs)[1]
        meta = batch_img_metas[0]
        if 'fit_matrix' in meta:
            if any(m['ori_shape'] != meta['ori_shape']
                   or not np.array_equal(m['fit_matrix'], meta['fit_matrix'])
                   for m in batch_img_metas):
                raise ValueError(
                    'CE2PHead: a test batch of SCHPAffineFit crops must come '
                    'from one image (their logits go back onto it): set '
                    'test_dataloader.batch_size=1 (and val_dataloader)')
            return torch.cat([
                self._fit_back_sample(logits[None], m)
                for logits, m in zip(fused, batch_img_metas)
            ])
        size = meta['pad_shape'][:2] if 'pad_shape' in meta else \
            meta['img_shape']
        return F.interpolate(fused, size=size, **_UP)

    @staticmethod
    def _fit_back_sample(logits: torch.Tensor, meta: dict) -> torch.Tensor:
        """:func:`fit_back` of one sample's logits. A horizontally flipped
        crop is flipped back first, in the crop (as theirs, before their
        warp back), and its result flipped again, for mmseg's segmentor
        flips it back on the image: the nearest pixels are then theirs also
        where a crop pixel is half-way between two."""
        hflip = meta.get('flip', False) and \
            meta.get('flip_direction') == 'horizontal'
        if hflip:
            logits = logits.flip(-1)
        back = fit_back(logits, meta['fit_matrix'], meta['fit_shape'],
                        meta['ori_shape'][:2])
        return back.flip(-1) if hflip else back
