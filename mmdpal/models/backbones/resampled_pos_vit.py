"""The authors' downstream ViT as mmpretrain's, with two named differences:
how the position embedding reaches the grid of the batch, and whether the
tapped outputs are normed in the stream."""
from typing import Optional

import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmpretrain.models import VisionTransformer

from mmdpal.registry import MODELS
from mmdpal.utils.options import check_choice
from ..utils.vit_tokens import POS_EMBED_RESIZES, embed_tokens

TAP_NORMS = (None, 'replace')


@MODELS.register_module()
class ResampledPosViT(VisionTransformer):
    """mmpretrain's ``VisionTransformer`` whose stored position embedding is
    resampled to the batch's patch grid in every forward by a named resize,
    as the authors' fine-tuning ViTs do (``stoa-xh91/
    Human-centric-Vision-Perception``: ``pose-estimation/.../vit.py``,
    ``person_detection/.../vision_transformer.py`` and
    ``HumanParsing/networks/vision_transformer.py``).

    Everything else is mmpretrain's: the parameters and their names, the
    blocks (``layer_cfgs`` gives the official student's 12 heads in its last
    block), the class token (``with_cls_token``), the final norm and
    ``out_type``. The stored embedding keeps the grid of ``img_size`` (with
    ``patch_cfg``'s padding), e.g. ``img_size=(256, 128)`` keeps the
    pretrained 1 + 16x8 as it is.

    Args:
        pos_embed_resize (str): ``'sequence_1d'`` (their pose ViT: the patch
            embeddings resized as one flat 1-D sequence, 128 -> 192 positions
            for 16x8 -> 16x12, class slot kept;
            ``vit_tokens.resample_sequence_1d``), ``'dino_scale_factor'``
            (their detection and LIP ViTs: DINO's 2-D bicubic resize by
            ``scale_factor=(grid + 0.1) / grid_0``) or ``'grid'``
            (mmpretrain's own 2-D resize, i.e. a plain
            ``VisionTransformer``). Defaults to ``'sequence_1d'``.
        tap_norm (str, optional): None: the outputs of the blocks in
            ``out_indices`` are the token stream as it is (mmpretrain's).
            ``'replace'``: their LIP ViT (``VisionTransformerHP.forward``:
            ``x = self.norm[idx](x)`` after blocks 4, 8, 12): a new norm
            (``norm_cfg``) after each block in ``out_indices`` whose output
            is the block's output *and replaces the stream*, so the next
            block takes the normed tokens. The norms are
            ``tap_norms.{i}`` of the backbone (none in a pretrained student:
            ``StrictPretrained(new_keys=['tap_norms.'])``). Needs
            ``final_norm=False`` (their last tap norm is the final norm).
            Defaults to None.
        *args, **kwargs: mmpretrain ``VisionTransformer``'s.
    """

    def __init__(self,
                 *args,
                 pos_embed_resize: str = 'sequence_1d',
                 tap_norm: Optional[str] = None,
                 **kwargs) -> None:
        check_choice('pos_embed_resize', pos_embed_resize,
                     list(POS_EMBED_RESIZES))
        check_choice('tap_norm', tap_norm, list(TAP_NORMS))
        super().__init__(*args, **kwargs)
        self.pos_embed_resize = pos_embed_resize
        self.tap_norm = tap_norm
        if tap_norm == 'replace':
            if self.final_norm:
                raise ValueError(
                    "ResampledPosViT: tap_norm='replace' norms the last "
                    'tapped block itself; set final_norm=False (the final '
                    'norm would norm it twice)')
            norm_cfg = kwargs.get('norm_cfg', dict(type='LN', eps=1e-6))
            self.tap_norms = nn.ModuleList([
                build_norm_layer(norm_cfg, self.embed_dims)[1]
                for _ in self.out_indices
            ])

    def forward(self, x):
        """mmpretrain's ``VisionTransformer.forward`` with the named
        position resize and, with ``tap_norm='replace'``, the tapped
        outputs normed in the stream."""
        x, grid = embed_tokens(self, x,
                               POS_EMBED_RESIZES[self.pos_embed_resize])
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == len(self.layers) - 1 and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                if self.tap_norm == 'replace':
                    x = self.tap_norms[list(self.out_indices).index(i)](x)
                outs.append(self._format_output(x, grid))
        return tuple(outs)
