"""SAIP's pixel-level decoders: cross-scale reconstruction (CSR, Eq. 2) and
cross-scale search (CSS, Eq. 3)."""
from typing import Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.models.backbones.vision_transformer import \
    TransformerEncoderLayer

from mmdpal.registry import MODELS
from mmdpal.utils.options import check_choice, check_heads
from ..utils.vit_tokens import resample_sequence_1d

_XAVIER = dict(type='Xavier', layer='Linear', distribution='uniform', bias=0.)


def _blocks(dims: int, num_heads: int, depth: int,
            mlp_ratio: float) -> nn.ModuleList:
    """``depth`` pre-norm ViT blocks (qkv bias, GELU, LayerNorm eps 1e-6)."""
    return nn.ModuleList([
        TransformerEncoderLayer(
            dims,
            num_heads,
            int(dims * mlp_ratio),
            qkv_bias=True,
            norm_cfg=dict(type='LN', eps=1e-6)) for _ in range(depth)
    ])


@MODELS.register_module()
class CSRDecoder(BaseModule):
    """Decoder of SAIP's cross-scale reconstruction (Eq. 2, phi).

    The visible tokens of the masked view (class token + kept patches) are
    embedded to ``dims``; mask tokens fill the removed positions
    (``ids_restore`` puts every patch back in place); a learned position
    embedding stored for ``1 + num_patches`` slots is resampled as one 1-D
    sequence (bicubic, the authors' resize) to the sequence; blocks, a norm
    and a linear give the L patches' pixels. How the anchor conditions the
    reconstruction is ``anchor_tokens``:

    - ``'patches'`` (the paper: "phi(F~'_t, F'_0, F'_0)", blocks of
      self-attention, cross-attention and feed-forward layers): the
      sequence ``[masked cls, L patches]``; every block cross-attends the
      embedded patch tokens of the anchor (:class:`SelfCrossBlock`).
    - ``'cls_token'`` (the authors' code, pretrain_decoder.py
      ``CSRDecoder.forward``): the anchor's embedded class token joins the
      sequence, ``[masked cls, anchor cls, L patches]``, and the blocks are
      plain ViT blocks.

    Args:
        in_dims (int): Width of the encoder tokens.
        num_patches (int): Patches of the anchor grid (256x128 / 16 = 128):
            the stored position embedding's length - 1.
        patch_size (int): Pixels per patch side (output: p * p * 3).
        dims (int): Decoder width. Defaults to 512.
        depth (int): Decoder blocks. Defaults to 8.
        num_heads (int): Heads of each attention. Defaults to 16.
        mlp_ratio (float): FFN width / dims. Defaults to 4.
        anchor_tokens (str): ``'patches'`` or ``'cls_token'``. Defaults to
            ``'patches'``.
    """

    def __init__(self,
                 in_dims: int,
                 num_patches: int,
                 patch_size: int,
                 dims: int = 512,
                 depth: int = 8,
                 num_heads: int = 16,
                 mlp_ratio: float = 4.,
                 anchor_tokens: str = 'patches',
                 init_cfg=_XAVIER):
        super().__init__(init_cfg=init_cfg)
        check_heads('CSRDecoder.num_heads', dims, num_heads)
        check_choice('CSRDecoder.anchor_tokens', anchor_tokens,
                     ('patches', 'cls_token'))
        self.anchor_tokens = anchor_tokens
        self.embed = nn.Linear(in_dims, dims)
        self.mask_token = nn.Parameter(torch.rand(1, 1, dims))
        self.pos_embed = nn.Parameter(torch.rand(1, num_patches + 1, dims))
        if anchor_tokens == 'patches':
            self.blocks = nn.ModuleList([
                SelfCrossBlock(dims, num_heads, mlp_ratio)
                for _ in range(depth)
            ])
        else:
            self.blocks = _blocks(dims, num_heads, depth, mlp_ratio)
        self.norm = nn.LayerNorm(dims, eps=1e-6)
        self.pred = nn.Linear(dims, patch_size * patch_size * 3)

    def forward(self, anchor: torch.Tensor, visible: torch.Tensor,
                ids_restore: torch.Tensor) -> torch.Tensor:
        """
        Args:
            anchor (Tensor): (B, 1 + L_0, C) tokens of the anchor, class
                token first.
            visible (Tensor): (B, 1 + K, C) class token + K kept patches of
                the masked view.
            ids_restore (Tensor): (B, L) position of each patch in
                ``[kept, removed]`` order.

        Returns:
            Tensor: (B, L, p * p * 3) predicted pixels of every patch.
        """
        B, L = ids_restore.shape
        vis = self.embed(visible)  # (B, 1 + K, D)
        D = vis.shape[-1]
        masked = self.mask_token.expand(B, L - (vis.shape[1] - 1), D)
        patches = torch.cat((vis[:, 1:], masked), dim=1)  # (B, L, D)
        patches = torch.gather(patches, 1, ids_restore[...,
                                                       None].expand(-1, -1, D))
        if self.anchor_tokens == 'cls_token':
            context = self.embed(anchor[:, :1])  # (B, 1, D)
            x = torch.cat((vis[:, :1], context, patches), dim=1)
        else:
            context = self.embed(anchor[:, 1:])  # (B, L_0, D)
            x = torch.cat((vis[:, :1], patches), dim=1)  # (B, 1 + L, D)
        extra = x.shape[1] - L  # tokens before the patches
        x = x + resample_sequence_1d(self.pos_embed, 1, x.shape[1] - 1)
        for block in self.blocks:
            x = block(x) if self.anchor_tokens == 'cls_token' else block(
                x, context)
        return self.pred(self.norm(x))[:, extra:]  # (B, L, p * p * 3)


class SelfCrossBlock(nn.Module):
    """Pre-norm block of self-attention, cross-attention (to ``context``)
    and feed-forward layers, each with a residual (the paper's
    pixel-level decoder block)."""

    def __init__(self, dims: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dims, eps=1e-6)
        self.self_attn = nn.MultiheadAttention(
            dims, num_heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dims, eps=1e-6)
        self.cross_attn = nn.MultiheadAttention(
            dims, num_heads, batch_first=True)
        self.norm3 = nn.LayerNorm(dims, eps=1e-6)
        hidden = int(dims * mlp_ratio)
        self.ffn = nn.Sequential(
            nn.Linear(dims, hidden), nn.GELU(), nn.Linear(hidden, dims))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """(B, N, D) tokens, (B, M, D) context -> (B, N, D)."""
        h = self.norm1(x)
        x = x + self.self_attn(h, h, h, need_weights=False)[0]
        x = x + self.cross_attn(
            self.norm2(x), context, context, need_weights=False)[0]
        return x + self.ffn(self.norm3(x))


class CrossAttentionBlock(nn.Module):
    """Pre-norm cross-attention block: ``q + MHA(norm1(q), kv, kv)``, then
    ``+ FFN(norm2(.))``; keys and values enter un-normed (torch's
    ``nn.MultiheadAttention``, one packed (3D, D) in-projection)."""

    def __init__(self, dims: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dims, eps=1e-6)
        self.attn = nn.MultiheadAttention(dims, num_heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dims, eps=1e-6)
        hidden = int(dims * mlp_ratio)
        self.ffn = nn.Sequential(
            nn.Linear(dims, hidden), nn.GELU(), nn.Linear(hidden, dims))

    def forward(self, query: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """(B, Q, D) queries attend (B, K, D) tokens -> (B, Q, D)."""
        x = query + self.attn(self.norm1(query), kv, kv)[0]
        return x + self.ffn(self.norm2(x))


@MODELS.register_module()
class CSSDecoder(BaseModule):
    """Decoder of SAIP's cross-scale search (Eq. 3: tau(phi(F'_t, F'_N+1,
    F'_N+1))): segments the query person inside the multi-person image.

    The query's tokens (class token first) are embedded and pass
    ``encoder_depth`` self-attention blocks; their class token cross-attends
    the embedded, normed tokens of the multi-person image and, normed and
    projected, becomes a mask kernel; a conv head (1x1 then 3x3 convs, GELU
    after each) maps the multi-person feature map to per-pixel embeddings;
    their dot product with the kernel is the mask logit of each position.

    Args:
        in_dims (int): Width of the encoder tokens.
        dims (int): Decoder width. Defaults to 512.
        num_heads (int): Heads of the attention blocks. Defaults to 16.
        encoder_depth (int): Self-attention blocks on the query. Defaults
            to 2.
        mask_head_depth (int): Convs of the mask head. Defaults to 4.
        mlp_ratio (float): FFN width / dims. Defaults to 4.
    """

    def __init__(self,
                 in_dims: int,
                 dims: int = 512,
                 num_heads: int = 16,
                 encoder_depth: int = 2,
                 mask_head_depth: int = 4,
                 mlp_ratio: float = 4.,
                 init_cfg=[
                     _XAVIER,
                     dict(
                         type='Xavier', layer='Conv2d', distribution='uniform')
                 ]):
        super().__init__(init_cfg=init_cfg)
        check_heads('CSSDecoder.num_heads', dims, num_heads)
        self.query_embed = nn.Linear(in_dims, dims)
        self.key_embed = nn.Linear(in_dims, dims)
        self.blocks = _blocks(dims, num_heads, encoder_depth, mlp_ratio)
        self.cross_block = CrossAttentionBlock(dims, num_heads, mlp_ratio)
        self.key_norm = nn.LayerNorm(dims, eps=1e-6)
        self.query_norm = nn.LayerNorm(dims, eps=1e-6)
        self.kernel = nn.Linear(dims, dims)
        convs = []
        for i in range(mask_head_depth):
            convs += [
                nn.Conv2d(in_dims, dims, 1) if i == 0 else nn.Conv2d(
                    dims, dims, 3, padding=1),
                nn.GELU()
            ]
        self.mask_head = nn.Sequential(*convs)

    def forward(self, query: torch.Tensor,
                multi: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            query (Tensor): (B, 1 + L_q, C) tokens of the query person.
            multi (Tensor): (B, C, h, w) patch tokens of the multi-person
                image as a map.

        Returns:
            Tensor: (B, h * w) mask logits.
        """
        q = self.query_embed(query)  # (B, 1 + L_q, D)
        for block in self.blocks:
            q = block(q)
        keys = self.key_norm(self.key_embed(multi.flatten(2).transpose(
            1, 2)))  # (B, h * w, D)
        q = self.cross_block(q[:, :1], keys)  # (B, 1, D)
        kernel = self.kernel(self.query_norm(q))  # (B, 1, D)
        pixels = self.mask_head(multi).flatten(2)  # (B, D, h * w)
        return torch.bmm(kernel, pixels)[:, 0]  # (B, h * w)
