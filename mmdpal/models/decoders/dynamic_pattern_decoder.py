"""D-PaDe, the dynamic pattern decoder of DPAL (Sec. 3.1, App. C.1)."""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model.weight_init import trunc_normal_, update_init_info

from mmdpal.registry import MODELS
from mmdpal.utils.options import check_choice
from .base import (BasePatternDecoder, DecoderOutput, Router,
                   TokenSelfAttention, heads_per_module,
                   routing_and_penalty_losses)

# The attention modules of D-PaDe, the keys of ``num_heads`` as a dict.
ATTENTION_MODULES = ('tokens', 'router', 'generator_sa', 'generator_ca')
# Where the generator normalises its pattern queries.
GENERATOR_NORMS = ('pre_sa_ca', 'pre_ca_ffn')


class ExpertGenerator(nn.Module):
    """Dynamic expert generator: pattern queries -> SA -> CA over the
    tokens -> FFN that outputs the parameters of one expert per query.

    Each expert E_i is a linear map C_s -> C_t whose matrix is generated per
    image: in full (``rank=None``, the authors' Linear(C_s, C_s * C_t)) or as
    a product A_i B_i of rank ``r`` (Linear(C_s, r * (C_s + C_t))).

    ``norms='pre_sa_ca'``: a LayerNorm before the self- and before the
    cross-attention, none before the FFN. ``'pre_ca_ffn'`` (the authors'):
    none before the self-attention, one before the cross-attention and one
    before the FFN.
    """

    def __init__(self,
                 in_dims: int,
                 out_dims: int,
                 num_experts: int,
                 sa_heads: int,
                 ca_heads: int,
                 rank: Optional[int],
                 norms: str = 'pre_sa_ca'):
        super().__init__()
        self.in_dims, self.out_dims, self.rank = in_dims, out_dims, rank
        self.queries = nn.Parameter(torch.zeros(1, num_experts, in_dims))
        if norms == 'pre_sa_ca':
            self.norm_sa = nn.LayerNorm(in_dims, eps=1e-6)
        self.self_attn = nn.MultiheadAttention(
            in_dims, sa_heads, batch_first=True)
        self.norm_ca = nn.LayerNorm(in_dims, eps=1e-6)
        self.cross_attn = nn.MultiheadAttention(
            in_dims, ca_heads, batch_first=True)
        if norms == 'pre_ca_ffn':
            self.norm_ffn = nn.LayerNorm(in_dims, eps=1e-6)
        self.norms = norms
        num_params = in_dims * out_dims if rank is None else rank * (
            in_dims + out_dims)
        self.ffn = nn.Sequential(
            nn.Linear(in_dims, num_params), nn.GELU(),
            nn.LayerNorm(num_params, eps=1e-6))
        trunc_normal_(self.queries, std=.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, N, C_s) -> expert matrices (B, E, C_s, C_t)."""
        B = tokens.shape[0]
        q = self.queries.expand(B, -1, -1)
        x = self.norm_sa(q) if self.norms == 'pre_sa_ca' else q
        q = q + self.self_attn(x, x, x, need_weights=False)[0]
        q = q + self.cross_attn(
            self.norm_ca(q), tokens, tokens, need_weights=False)[0]
        if self.norms == 'pre_ca_ffn':
            q = self.norm_ffn(q)
        params = self.ffn(q)  # (B, E, P)
        E = params.shape[1]
        if self.rank is None:
            return params.view(B, E, self.in_dims, self.out_dims)
        split = self.in_dims * self.rank
        a = params[..., :split].view(B, E, self.in_dims, self.rank)
        b = params[..., split:].view(B, E, self.rank, self.out_dims)
        return a @ b


@MODELS.register_module()
class DynamicPatternDecoder(BasePatternDecoder):
    """D-PaDe (Sec. 3.1, Eq. 1-3, App. C.1).

    For one token set F (the class token of a view, the patch tokens of the
    single-person image, or those of the multi-person image):

    .. math::
        \\widetilde{F} = \\sum_{i=1}^{3} W_i^e \\cdot
            E_i(F + SA(F))

    where the experts E_i are *generated* from 3 learnable pattern queries
    (self-attention, cross-attention over F, FFN) and W^e comes from a router
    token that cross-attends to the tokens. The experts are linear maps to
    the teacher's width, so the weighted sum of experts equals one mixed
    matrix per image; the output is ``LayerNorm(GELU(x @ sum_i W_i M_i *
    scale))`` with ``x = LayerNorm(F + SA(F))``, as in the authors' code.
    Used only in pretraining, then discarded.

    The defaults are the paper mode; the authors' ``LossMOEDecoder`` is
    ``num_heads=dict(tokens=16, router=12, generator_sa=16,
    generator_ca=16), router_keys='attended', router_bias=False,
    generator_norms='pre_ca_ffn', init_mode='authors', weight_scale=1/256``
    (``configs/dpal/vit-ti_path-b_lup1m_official.py``).

    Parameter counts of the whole decoder (C_s=192 ViT-Ti, C_t=768 ViT-B,
    measured): full experts 29.35M (the generator's Linear(192, 192*768)
    alone is 28.5M, 5x the student); ``expert_rank=16``: 3.59M.

    Args:
        in_dims (int): Student width C_s.
        out_dims (int): Teacher width C_t.
        num_experts (int): Number of experts / pattern queries. Defaults to 3.
        num_heads (int | dict): Heads of every attention module, or a dict
            with one entry per module: ``tokens`` (the token
            self-attention), ``router``, ``generator_sa``, ``generator_ca``.
            Defaults to 6.
        router_keys (str): What the router token attends to: ``'tokens'``
            (default, the input tokens F) or ``'attended'`` (the authors':
            ``LayerNorm(F + SA(F))``).
        router_bias (bool): Bias of the router's logit layer. Defaults to
            True (the authors' has none).
        generator_norms (str): ``'pre_sa_ca'`` (default) or ``'pre_ca_ffn'``
            (the authors'), see :class:`ExpertGenerator`.
        expert_rank (int, optional): Generate rank-r experts instead of full
            C_s x C_t matrices. Defaults to None (full, as the authors).
        weight_scale (float, optional): Factor on the mixed expert matrix.
            Defaults to 1/sqrt(C_s) (the generated weights are LayerNormed,
            so this keeps the outputs at unit scale); the authors use 1/256.
        init_mode (str): ``'default'``: torch's init of each layer, pattern
            queries and router token trunc-normal (std 0.02). ``'authors'``:
            every Linear (the generator's and the attention output
            projections included) xavier-uniform with zero bias, the packed
            attention in-projections torch's own init, LayerNorms 1 and 0,
            router token N(0, 1), router logit weight kaiming-uniform
            (a=sqrt(5)), pattern queries zero. Applied by ``init_weights()``.
        router_loss_weight (float): Weight of the authors' routing
            supervision (``loss_router``, cross-entropy towards expert 0/1/2
            for the global/local/relation pattern, mean over the decoder
            calls of a step). 0 (paper) turns it off.
        expert_l2_weight (float): Weight of the authors' penalty on the mixed
            expert matrix (``loss_expert_l2``: sum of its squares, mean over
            the batch and the decoder calls; they use 0.025). 0 (paper)
            turns it off.
    """

    def __init__(self,
                 in_dims: int,
                 out_dims: int,
                 num_experts: int = 3,
                 num_heads: Union[int, dict] = 6,
                 router_keys: str = 'tokens',
                 router_bias: bool = True,
                 generator_norms: str = 'pre_sa_ca',
                 expert_rank: Optional[int] = None,
                 weight_scale: Optional[float] = None,
                 init_mode: str = 'default',
                 router_loss_weight: float = 0.,
                 expert_l2_weight: float = 0.,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        check_choice('router_keys', router_keys, ('tokens', 'attended'))
        check_choice('generator_norms', generator_norms, GENERATOR_NORMS)
        check_choice('init_mode', init_mode, ('default', 'authors'))
        heads = heads_per_module(num_heads, in_dims, ATTENTION_MODULES)
        self.self_attn = TokenSelfAttention(in_dims, heads['tokens'])
        self.router = Router(
            in_dims, num_experts, heads['router'], bias=router_bias)
        self.generator = ExpertGenerator(
            in_dims,
            out_dims,
            num_experts,
            heads['generator_sa'],
            heads['generator_ca'],
            expert_rank,
            norms=generator_norms)
        self.router_keys = router_keys
        self.init_mode = init_mode
        self.weight_scale = weight_scale if weight_scale is not None \
            else 1 / math.sqrt(in_dims)
        self.act = nn.GELU()
        self.out_norm = nn.LayerNorm(out_dims, eps=1e-6)
        self.router_loss_weight = router_loss_weight
        self.expert_l2_weight = expert_l2_weight

    def init_weights(self) -> None:
        """``init_cfg`` first, then the authors' init if asked for."""
        super().init_weights()
        if self.init_mode != 'authors':
            return
        for m in self.modules():
            if isinstance(m, nn.MultiheadAttention):
                m._reset_parameters()  # torch's own in-projection init
        for m in self.modules():  # nn.MultiheadAttention.out_proj included
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.router.token)
        nn.init.kaiming_uniform_(self.router.fc.weight, a=math.sqrt(5))
        nn.init.zeros_(self.generator.queries)
        if hasattr(self, '_params_init_info'):  # inside a parent's init
            update_init_info(self, init_info="init_mode='authors'")

    def forward(self, tokens: torch.Tensor) -> DecoderOutput:
        """tokens (B, N, C_s) -> DecoderOutput with tokens (B, N, C_t)."""
        x = self.self_attn(tokens)  # LN(F + SA(F))
        weights = self.router(x if self.router_keys == 'attended' else tokens)
        experts = self.generator(tokens)  # (B, E, C_s, C_t)
        mixed = torch.einsum('be,beio->bio', weights.to(experts.dtype),
                             experts) * self.weight_scale  # sum_i W_i^e M_i
        out = x @ mixed.to(x.dtype)  # (B, N, C_t)
        out = self.out_norm(self.act(out))
        return DecoderOutput(out, weights, mixed)

    def loss(self, outputs: Sequence[Tuple[str, DecoderOutput]]) -> dict:
        """The authors' auxiliary terms over the decoder calls of a step."""
        return routing_and_penalty_losses(outputs, self.router_loss_weight,
                                          self.expert_l2_weight)
