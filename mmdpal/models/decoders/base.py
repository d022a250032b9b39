"""What every pattern decoder shares: its output, its interface, the
attention blocks of D-PaDe and the authors' auxiliary terms."""
from abc import abstractmethod
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_

from mmdpal.utils.options import check_heads


class DecoderOutput(NamedTuple):
    """What a pattern decoder returns for one token set.

    Attributes:
        tokens (Tensor): Decoded tokens in the teacher's width (B, N, C_t).
        router_weights (Tensor | None): Expert weights W^e (B, E), softmax.
        mixed_experts (Tensor | None): The matrix that maps the tokens,
            sum_i W_i^e M_i times the decoder's scale (B, C_s, C_t); what the
            authors' expert L2 penalises.
    """
    tokens: torch.Tensor
    router_weights: Optional[torch.Tensor] = None
    mixed_experts: Optional[torch.Tensor] = None


# Index of each pattern: the expert the authors' routing loss pushes it to.
PATTERNS = ('global', 'local', 'relation')


class BasePatternDecoder(BaseModule):
    """The interface of a pattern decoder (D-PaDe and the Table 11 variants).

    ``forward(tokens)`` maps student tokens (B, N, C_s) to a
    :class:`DecoderOutput`; ``loss(outputs)`` returns the decoder's own
    auxiliary loss terms over all the calls of one training step
    (``[(pattern, DecoderOutput), ...]``, ``pattern`` in :data:`PATTERNS`);
    none by default.
    """

    @abstractmethod
    def forward(self, tokens: torch.Tensor) -> DecoderOutput:
        """tokens (B, N, C_s) -> :class:`DecoderOutput`."""

    def loss(self, outputs: Sequence[Tuple[str, DecoderOutput]]) -> dict:
        return {}


def heads_per_module(num_heads: Union[int, dict], dims: int,
                     modules: Sequence[str]) -> dict:
    """``num_heads`` as one int for every attention module or a dict with
    one entry per module; checked against ``dims``."""
    if isinstance(num_heads, int):
        heads = {m: num_heads for m in modules}
    else:
        heads = dict(num_heads)
        if set(heads) != set(modules):
            raise ValueError(f'num_heads={heads}: give one int or a dict '
                             f'with exactly the keys {list(modules)}')
    for m, h in heads.items():
        check_heads(f'num_heads[{m!r}]', dims, h)
    return heads


class TokenSelfAttention(nn.Module):
    """``LayerNorm(F + SA(F))``: the self-attention of Eq. 1-3 (no pre-norm,
    a LayerNorm after the residual, as the authors)."""

    def __init__(self, dims: int, num_heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(dims, num_heads, batch_first=True)
        self.norm = nn.LayerNorm(dims, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.attn(x, x, x, need_weights=False)[0])


class Router(nn.Module):
    """A learnable router token T_r cross-attends to a token set and scores
    the experts: W^e = softmax(Linear(CA(LN(T_r), F, F))), (B, E).

    Args:
        dims (int): Token width.
        num_experts (int): Number of experts E.
        num_heads (int): Heads of the cross-attention.
        bias (bool): Bias of the linear map to the E logits (the authors'
            has none).
    """

    def __init__(self,
                 dims: int,
                 num_experts: int,
                 num_heads: int,
                 bias: bool = True):
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 1, dims))
        self.norm = nn.LayerNorm(dims, eps=1e-6)
        self.attn = nn.MultiheadAttention(dims, num_heads, batch_first=True)
        self.fc = nn.Linear(dims, num_experts, bias=bias)
        trunc_normal_(self.token, std=.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.norm(self.token).expand(x.shape[0], -1, -1)
        r = self.attn(q, x, x, need_weights=False)[0][:, 0]  # (B, C)
        return self.fc(r).softmax(dim=-1)


def routing_and_penalty_losses(outputs: Sequence[Tuple[str, DecoderOutput]],
                               router_loss_weight: float,
                               expert_l2_weight: float) -> dict:
    """The auxiliary terms of the authors' code (off when weights are 0),
    each averaged over all the decoder calls of a step.

    ``loss_router``: cross-entropy of W^e towards expert 0 for the global
    pattern, 1 for local, 2 for relation, mean over the batch.
    ``loss_expert_l2``: sum of squares of the mixed expert matrix
    (``DecoderOutput.mixed_experts``, after the routing weights and the
    scale), mean over the batch.
    """
    losses = {}
    if router_loss_weight > 0:
        terms = [
            -out.router_weights[:, PATTERNS.index(name)].float().clamp_min(
                1e-12).log().mean() for name, out in outputs
        ]
        losses['loss_router'] = router_loss_weight * torch.stack(terms).mean()
    if expert_l2_weight > 0:
        terms = [
            out.mixed_experts.float().pow(2).sum(dim=(1, 2)).mean()
            for _, out in outputs
        ]
        losses['loss_expert_l2'] = expert_l2_weight * torch.stack(terms).mean()
    return losses
