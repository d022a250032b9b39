from typing import Dict, NamedTuple, Optional

import torch
import torch.nn as nn
from mmengine.model.weight_init import trunc_normal_


class DecoderOutput(NamedTuple):
    """What a pattern decoder returns for one token set.

    Attributes:
        tokens (Tensor): Decoded tokens in the teacher's width (B, N, C_t).
        router_weights (Tensor | None): Expert weights W^e (B, E), softmax.
        expert_params (Tensor | None): Generated expert parameters
            (B, E, P), for the authors' L2 penalty.
    """
    tokens: torch.Tensor
    router_weights: Optional[torch.Tensor] = None
    expert_params: Optional[torch.Tensor] = None


# Index of each pattern: the expert the authors' routing loss pushes it to.
PATTERNS = ('global', 'local', 'relation')


class TokenSelfAttention(nn.Module):
    """``LayerNorm(F + SA(F))``: the self-attention of Eq. 1-3."""

    def __init__(self, dims: int, num_heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(dims, num_heads, batch_first=True)
        self.norm = nn.LayerNorm(dims, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.attn(x, x, x, need_weights=False)[0])


class Router(nn.Module):
    """A learnable router token T_r cross-attends to the tokens and scores
    the experts: W^e = softmax(Linear(CA(LN(T_r), F, F))), (B, E)."""

    def __init__(self, dims: int, num_experts: int, num_heads: int):
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 1, dims))
        self.norm = nn.LayerNorm(dims, eps=1e-6)
        self.attn = nn.MultiheadAttention(dims, num_heads, batch_first=True)
        self.fc = nn.Linear(dims, num_experts)
        trunc_normal_(self.token, std=.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.norm(self.token).expand(x.shape[0], -1, -1)
        r = self.attn(q, x, x, need_weights=False)[0][:, 0]  # (B, C)
        return self.fc(r).softmax(dim=-1)


def routing_and_penalty_losses(outputs: Dict[str, DecoderOutput],
                               router_loss_weight: float,
                               expert_l2_weight: float) -> dict:
    """The auxiliary terms of the authors' code (off when weights are 0).

    ``loss_router``: cross-entropy of W^e towards expert 0 for the global
    pattern, 1 for local, 2 for relation, averaged over the patterns given.
    ``loss_expert_l2``: mean squared generated expert parameter.
    """
    losses = {}
    if router_loss_weight > 0:
        terms = [
            -out.router_weights[:, PATTERNS.index(name)].clamp_min(
                1e-12).log().mean() for name, out in outputs.items()
        ]
        losses['loss_router'] = router_loss_weight * torch.stack(terms).mean()
    if expert_l2_weight > 0:
        terms = [
            out.expert_params.float().pow(2).mean()
            for out in outputs.values()
        ]
        losses['loss_expert_l2'] = expert_l2_weight * torch.stack(terms).mean()
    return losses
