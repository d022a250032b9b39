"""The authors' downstream ViT as mmpretrain's, with one named difference:
how the position embedding reaches the grid of the batch."""
from mmpretrain.models import VisionTransformer

from mmdpal.registry import MODELS
from mmdpal.utils.options import check_choice
from ..utils.vit_tokens import POS_EMBED_RESIZES, embed_tokens


@MODELS.register_module()
class ResampledPosViT(VisionTransformer):
    """mmpretrain's ``VisionTransformer`` whose stored position embedding is
    resampled to the batch's patch grid in every forward by a named resize,
    as the authors' fine-tuning ViTs do (``stoa-xh91/
    Human-centric-Vision-Perception``: ``pose-estimation/.../vit.py`` and
    ``person_detection/.../vision_transformer.py``).

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
            ``vit_tokens.sequence_1d_pos_embed``), ``'dino_scale_factor'``
            (their detection ViT: DINO's 2-D bicubic resize by
            ``scale_factor=(grid + 0.1) / grid_0``) or ``'grid'``
            (mmpretrain's own 2-D resize, i.e. a plain
            ``VisionTransformer``). Defaults to ``'sequence_1d'``.
        *args, **kwargs: mmpretrain ``VisionTransformer``'s.
    """

    def __init__(self,
                 *args,
                 pos_embed_resize: str = 'sequence_1d',
                 **kwargs) -> None:
        check_choice('pos_embed_resize', pos_embed_resize,
                     list(POS_EMBED_RESIZES))
        super().__init__(*args, **kwargs)
        self.pos_embed_resize = pos_embed_resize

    def forward(self, x):
        """mmpretrain's ``VisionTransformer.forward`` with the named
        position resize."""
        x, grid = embed_tokens(self, x,
                               POS_EMBED_RESIZES[self.pos_embed_resize])
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == len(self.layers) - 1 and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, grid))
        return tuple(outs)
