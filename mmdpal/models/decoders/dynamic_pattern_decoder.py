"""D-PaDe, the dynamic pattern decoder of DPAL (Sec. 3.1, App. C.1)."""
import math
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_

from mmdpal.registry import MODELS
from .base import (DecoderOutput, Router, TokenSelfAttention,
                   routing_and_penalty_losses)


class ExpertGenerator(nn.Module):
    """Dynamic expert generator: pattern queries -> SA -> CA over the
    tokens -> FFN that outputs the parameters of one expert per query.

    Each expert E_i is a linear map C_s -> C_t whose matrix is generated per
    image: in full (``rank=None``, the authors' Linear(C_s, C_s * C_t)) or as
    a product A_i B_i of rank ``r`` (Linear(C_s, r * (C_s + C_t))).
    """

    def __init__(self, in_dims: int, out_dims: int, num_experts: int,
                 num_heads: int, rank: Optional[int]):
        super().__init__()
        self.in_dims, self.out_dims, self.rank = in_dims, out_dims, rank
        self.queries = nn.Parameter(torch.zeros(1, num_experts, in_dims))
        self.norm_sa = nn.LayerNorm(in_dims, eps=1e-6)
        self.self_attn = nn.MultiheadAttention(
            in_dims, num_heads, batch_first=True)
        self.norm_ca = nn.LayerNorm(in_dims, eps=1e-6)
        self.cross_attn = nn.MultiheadAttention(
            in_dims, num_heads, batch_first=True)
        num_params = in_dims * out_dims if rank is None else rank * (
            in_dims + out_dims)
        self.ffn = nn.Sequential(
            nn.Linear(in_dims, num_params), nn.GELU(),
            nn.LayerNorm(num_params, eps=1e-6))
        # The authors zero-initialise the queries; then the three experts are
        # identical and stay so (same inputs, same gradients). Random init
        # breaks the symmetry.
        trunc_normal_(self.queries, std=.02)

    def forward(self, tokens: torch.Tensor):
        """tokens (B, N, C_s) -> expert matrices (B, E, C_s, C_t) and the raw
        generated parameters (B, E, P)."""
        B = tokens.shape[0]
        q = self.queries.expand(B, -1, -1)
        x = self.norm_sa(q)
        q = q + self.self_attn(x, x, x, need_weights=False)[0]
        q = q + self.cross_attn(
            self.norm_ca(q), tokens, tokens, need_weights=False)[0]
        params = self.ffn(q)  # (B, E, P)
        E = params.shape[1]
        if self.rank is None:
            experts = params.view(B, E, self.in_dims, self.out_dims)
        else:
            split = self.in_dims * self.rank
            a = params[..., :split].view(B, E, self.in_dims, self.rank)
            b = params[..., split:].view(B, E, self.rank, self.out_dims)
            experts = a @ b
        return experts, params


@MODELS.register_module()
class DynamicPatternDecoder(BaseModule):
    """D-PaDe (Sec. 3.1, Eq. 1-3, App. C.1).

    For one token set F (the class token of a view, the patch tokens of the
    single-person image, or those of the multi-person image):

    .. math::
        \\widetilde{F} = \\sum_{i=1}^{3} W_i^e \\cdot
            E_i(F + SA(F))

    where the experts E_i are *generated* from 3 learnable pattern queries
    (self-attention, cross-attention over F, FFN) and W^e comes from a router
    token that cross-attends to F. The experts are linear maps to the
    teacher's width, so the weighted sum of experts equals one mixed matrix
    per image; the output is ``LayerNorm(GELU(x @ sum_i W_i M_i * scale))``
    as in the authors' code. Used only in pretraining, then discarded.

    Parameter counts of the whole decoder (C_s=192 ViT-Ti, C_t=768 ViT-B,
    6 heads, measured): full experts 29.35M (the generator's
    Linear(192, 192*768) alone is 28.5M, 5x the student);
    ``expert_rank=16``: 3.59M.

    Args:
        in_dims (int): Student width C_s.
        out_dims (int): Teacher width C_t.
        num_experts (int): Number of experts / pattern queries. Defaults to 3.
        num_heads (int): Heads of the attention modules. Defaults to 6.
        expert_rank (int, optional): Generate rank-r experts instead of full
            C_s x C_t matrices. Defaults to None (full, as the authors).
        weight_scale (float, optional): Factor on the mixed expert matrix.
            Defaults to 1/sqrt(C_s) (the generated weights are LayerNormed,
            so this keeps the outputs at unit scale); the authors use 1/256.
        router_loss_weight (float): Weight of the authors' routing
            supervision (``loss_router``, cross-entropy towards expert 0/1/2
            for the global/local/relation pattern). 0 (paper) turns it off.
        expert_l2_weight (float): Weight of the authors' penalty on the
            generated parameters (``loss_expert_l2``; they use 0.025).
            0 (paper) turns it off.
    """

    def __init__(self,
                 in_dims: int,
                 out_dims: int,
                 num_experts: int = 3,
                 num_heads: int = 6,
                 expert_rank: Optional[int] = None,
                 weight_scale: Optional[float] = None,
                 router_loss_weight: float = 0.,
                 expert_l2_weight: float = 0.,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.self_attn = TokenSelfAttention(in_dims, num_heads)
        self.router = Router(in_dims, num_experts, num_heads)
        self.generator = ExpertGenerator(in_dims, out_dims, num_experts,
                                         num_heads, expert_rank)
        self.weight_scale = weight_scale if weight_scale is not None \
            else 1 / math.sqrt(in_dims)
        self.act = nn.GELU()
        self.out_norm = nn.LayerNorm(out_dims, eps=1e-6)
        self.router_loss_weight = router_loss_weight
        self.expert_l2_weight = expert_l2_weight

    def forward(self, tokens: torch.Tensor) -> DecoderOutput:
        """tokens (B, N, C_s) -> DecoderOutput with tokens (B, N, C_t)."""
        x = self.self_attn(tokens)  # F + SA(F)
        weights = self.router(tokens)  # W^e (B, E)
        experts, params = self.generator(tokens)  # (B, E, C_s, C_t)
        mixed = torch.einsum('be,beio->bio', weights.to(experts.dtype),
                             experts)  # sum_i W_i^e M_i
        out = x @ (mixed * self.weight_scale).to(x.dtype)  # (B, N, C_t)
        out = self.out_norm(self.act(out))
        return DecoderOutput(out, weights, params)

    def loss(self, outputs: Dict[str, DecoderOutput]) -> dict:
        """Auxiliary losses of the authors' code over the pattern outputs."""
        return routing_and_penalty_losses(outputs, self.router_loss_weight,
                                          self.expert_l2_weight)
