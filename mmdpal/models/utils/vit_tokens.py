"""The token embedding of an mmpretrain ``VisionTransformer``, with the
position-embedding resize as a choice (the teacher's and the student's
options both change only that step)."""
from typing import Callable, Tuple

import torch
from mmpretrain.models import VisionTransformer

# (vit, patch grid (h, w)) -> position embedding (1, extra + h * w, C)
PosEmbedFn = Callable[[VisionTransformer, Tuple[int, int]], torch.Tensor]


def embed_tokens(vit: VisionTransformer, img: torch.Tensor,
                 pos_embed: PosEmbedFn) -> Tuple[torch.Tensor, tuple]:
    """What ``VisionTransformer.forward`` does before its blocks: patch
    embedding, class token, position embedding (``pos_embed(vit, grid)``),
    dropout and pre-norm.

    Returns:
        tuple: tokens (B, extra + L, C) and the patch grid (h, w).
    """
    x, grid = vit.patch_embed(img)
    if vit.cls_token is not None:
        x = torch.cat((vit.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
    x = x + pos_embed(vit, tuple(grid))
    return vit.pre_norm(vit.drop_after_pos(x)), tuple(grid)
