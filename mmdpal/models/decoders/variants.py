"""The pattern-decoder variants of the ablation in Table 11."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmpretrain.models.backbones.vision_transformer import \
    TransformerEncoderLayer

from mmdpal.registry import MODELS
from .base import (BasePatternDecoder, DecoderOutput, Router,
                   TokenSelfAttention, routing_and_penalty_losses)


@MODELS.register_module()
class LinearDecoder(BasePatternDecoder):
    """"w/o decoder" of Table 11: one linear projection C_s -> C_t."""

    def __init__(self,
                 in_dims: int,
                 out_dims: int,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.proj = nn.Linear(in_dims, out_dims)

    def forward(self, tokens: torch.Tensor) -> DecoderOutput:
        return DecoderOutput(self.proj(tokens))


@MODELS.register_module()
class TransformerDecoder(BasePatternDecoder):
    """"MAE-style" of Table 11: embed, two transformer blocks, norm, project.

    Args:
        in_dims (int): Student width C_s.
        out_dims (int): Teacher width C_t.
        embed_dims (int): Width of the decoder blocks. Defaults to 256.
        num_layers (int): Number of blocks. Defaults to 2.
        num_heads (int): Heads per block. Defaults to 8.
    """

    def __init__(self,
                 in_dims: int,
                 out_dims: int,
                 embed_dims: int = 256,
                 num_layers: int = 2,
                 num_heads: int = 8,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.embed = nn.Linear(in_dims, embed_dims)
        self.blocks = nn.ModuleList([
            TransformerEncoderLayer(
                embed_dims, num_heads, 4 * embed_dims, qkv_bias=True)
            for _ in range(num_layers)
        ])
        self.norm = nn.LayerNorm(embed_dims, eps=1e-6)
        self.proj = nn.Linear(embed_dims, out_dims)

    def forward(self, tokens: torch.Tensor) -> DecoderOutput:
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return DecoderOutput(self.proj(self.norm(x)))


@MODELS.register_module()
class MoEDecoder(BasePatternDecoder):
    """"Standard MoE" of Table 11: the same self-attention, router and
    output head as D-PaDe, but 3 *fixed* MLP experts instead of generated
    ones: ``LN(GELU(sum_i W_i^e MLP_i(F + SA(F))))``.

    Args:
        in_dims (int): Student width C_s.
        out_dims (int): Teacher width C_t.
        num_experts (int): Defaults to 3.
        num_heads (int): Heads of the attention modules. Defaults to 6.
        hidden_dims (int): Hidden width of each expert MLP. Defaults to
            4 * in_dims.
        router_loss_weight (float): As in :class:`DynamicPatternDecoder`.
    """

    def __init__(self,
                 in_dims: int,
                 out_dims: int,
                 num_experts: int = 3,
                 num_heads: int = 6,
                 hidden_dims: Optional[int] = None,
                 router_loss_weight: float = 0.,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        hidden_dims = hidden_dims or 4 * in_dims
        self.self_attn = TokenSelfAttention(in_dims, num_heads)
        self.router = Router(in_dims, num_experts, num_heads)
        self.experts = nn.ModuleList([
            nn.Sequential(
                nn.Linear(in_dims, hidden_dims), nn.GELU(),
                nn.Linear(hidden_dims, out_dims)) for _ in range(num_experts)
        ])
        self.act = nn.GELU()
        self.out_norm = nn.LayerNorm(out_dims, eps=1e-6)
        self.router_loss_weight = router_loss_weight

    def forward(self, tokens: torch.Tensor) -> DecoderOutput:
        x = self.self_attn(tokens)
        weights = self.router(tokens)  # (B, E)
        expert_out = torch.stack([e(x) for e in self.experts], dim=1)
        out = torch.einsum('be,benc->bnc', weights.to(expert_out.dtype),
                           expert_out)
        return DecoderOutput(self.out_norm(self.act(out)), weights)

    def loss(self, outputs: Sequence[Tuple[str, DecoderOutput]]) -> dict:
        return routing_and_penalty_losses(outputs, self.router_loss_weight, 0.)
