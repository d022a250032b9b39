"""The token embedding of an mmpretrain ``VisionTransformer``, with the
position-embedding resize as a choice (the teacher's, the student's and the
authors' downstream options all change only that step).

Every ``pos_embed_*`` is a function ``(vit, grid) -> pos_embed`` (1, extra +
h * w, C) from the ViT's stored ``pos_embed`` (on its ``patch_resolution``)
to the patch grid of the batch; :data:`POS_EMBED_RESIZES` names them.
:func:`resample_sequence_1d` works on a tensor (also used at loading, by
``StrictPretrained``).
"""
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed

# (vit, patch grid (h, w)) -> position embedding (1, extra + h * w, C)
PosEmbedFn = Callable[[VisionTransformer, Tuple[int, int]], torch.Tensor]


def embed_tokens(
        vit: VisionTransformer,
        img: torch.Tensor,
        pos_embed: PosEmbedFn,
        mask: Optional[torch.Tensor] = None,
        mask_token: Optional[torch.Tensor] = None
) -> Tuple[torch.Tensor, tuple]:
    """What ``VisionTransformer.forward`` does before its blocks: patch
    embedding, class token, position embedding (``pos_embed(vit, grid)``),
    dropout and pre-norm.

    ``mask`` (B, L) bool and ``mask_token`` (1, 1, C): the patch embeddings
    where ``mask`` is True are replaced by ``mask_token`` before the class
    token and the position embedding are added (DINOv2's / BEiT's masked
    image modelling input).

    Returns:
        tuple: tokens (B, extra + L, C) and the patch grid (h, w).
    """
    x, grid = vit.patch_embed(img)
    if mask is not None:
        x = torch.where(mask[..., None], mask_token.to(x.dtype), x)
    if vit.cls_token is not None:
        x = torch.cat((vit.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
    x = x + pos_embed(vit, tuple(grid))
    return vit.pre_norm(vit.drop_after_pos(x)), tuple(grid)


def resample_sequence_1d(pos_embed: torch.Tensor,
                         num_extra_tokens: int,
                         num_patches: int,
                         mode: str = 'bicubic') -> torch.Tensor:
    """Resample a position-embedding *tensor* as the authors' code does in
    several places, a quirk: the patch position embeddings are resized as
    one flattened 1-D sequence (length L_0 -> ``num_patches``,
    ``align_corners=False``), ignoring the 2-D grid; the extra (class)
    tokens' slots are kept.

    ``mode='bicubic'``: their pretraining student and their pose ViT's
    ``interpolate_pos_encoding`` (every forward). ``mode='bilinear'``: their
    LIP ViT's loader (HumanParsing/networks/vision_transformer.py
    ``VisionTransformerHP.init_weights``: ``F.interpolate(pos.unsqueeze(0),
    size=(l - 1, d), mode='bilinear')``, identity along the channels).

    Args:
        pos_embed (Tensor): (1, n + L_0, C).
        num_extra_tokens (int): n, the slots kept as they are.
        num_patches (int): L, the patch positions wanted.
        mode (str): ``'bicubic'`` or ``'bilinear'``. Defaults to
            ``'bicubic'``.

    Returns:
        Tensor: (1, n + L, C).
    """
    n = num_extra_tokens
    if pos_embed.shape[1] - n == num_patches:
        return pos_embed
    x = pos_embed[:, n:].transpose(1, 2)[..., None]  # (1, C, L_0, 1)
    x = F.interpolate(x, size=(num_patches, 1), mode=mode, align_corners=False)
    return torch.cat((pos_embed[:, :n], x[..., 0].transpose(1, 2)), dim=1)


def pos_embed_grid(vit: VisionTransformer, grid: Tuple[int,
                                                       int]) -> torch.Tensor:
    """mmpretrain's resize of the position grid to ``grid`` (the ViT's
    ``interpolate_mode``): what ``VisionTransformer.forward`` does."""
    return resize_pos_embed(
        vit.pos_embed,
        vit.patch_resolution,
        grid,
        mode=vit.interpolate_mode,
        num_extra_tokens=vit.num_extra_tokens)


def pos_embed_sequence_1d(vit: VisionTransformer,
                          grid: Tuple[int, int]) -> torch.Tensor:
    """The ViT's position embedding for ``grid``:
    :func:`resample_sequence_1d` (bicubic) of its stored one."""
    return resample_sequence_1d(vit.pos_embed, vit.num_extra_tokens,
                                grid[0] * grid[1])


def pos_embed_dino_scale_factor(vit: VisionTransformer,
                                grid: Tuple[int, int]) -> torch.Tensor:
    """DINO's resize, as the authors' teacher and their detection ViT:
    bicubic with ``scale_factor=((h + 0.1) / h0, (w + 0.1) / w0)`` instead
    of a target size (the sampling positions differ slightly)."""
    if tuple(grid) == tuple(vit.patch_resolution):
        return vit.pos_embed
    n = vit.num_extra_tokens
    (h0, w0), (h, w) = vit.patch_resolution, grid
    extra, patch = vit.pos_embed[:, :n], vit.pos_embed[:, n:]
    x = patch.reshape(1, h0, w0, -1).permute(0, 3, 1, 2)
    x = F.interpolate(
        x,
        scale_factor=((h + 0.1) / h0, (w + 0.1) / w0),
        mode='bicubic',
        align_corners=False)
    return torch.cat((extra, x.flatten(2).transpose(1, 2)), dim=1)


POS_EMBED_RESIZES = dict(
    grid=pos_embed_grid,
    sequence_1d=pos_embed_sequence_1d,
    dino_scale_factor=pos_embed_dino_scale_factor)


def block_outputs(vit: VisionTransformer, x: torch.Tensor,
                  indices: Sequence[int]) -> List[torch.Tensor]:
    """Run the blocks of ``vit`` on embedded tokens ``x`` (B, N, C) up to
    the last of ``indices``; the output of each block in ``indices``
    (0-based), the last block's final-normed as mmpretrain's ``out_indices``
    gives it: a list of (B, N, C)."""
    last = len(vit.layers) - 1
    outs = []
    for i, layer in enumerate(vit.layers[:max(indices) + 1]):
        x = layer(x)
        if i in indices:
            outs.append(vit.ln1(x) if i == last and vit.final_norm else x)
    return outs


def block_qkv(layer, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Query, key and value of an mmpretrain ``TransformerEncoderLayer``
    for its input ``x`` (B, N, C): each (B, heads, N, C / heads), from the
    layer's pre-norm ``ln1`` and ``attn.qkv``, as its attention forms them."""
    attn = layer.attn
    B, N, _ = x.shape
    qkv = attn.qkv(layer.ln1(x)).reshape(B, N, 3, attn.num_heads,
                                         attn.head_dims).permute(
                                             2, 0, 3, 1, 4)
    return qkv[0], qkv[1], qkv[2]
