"""D-PaDe (Eq. 1-3) and the Table 11 variants."""
import pytest
import torch

from mmdpal.models import (DynamicPatternDecoder, LinearDecoder, MoEDecoder,
                           TransformerDecoder)


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_router_weights_sum_to_one_and_experts_depend_on_input():
    torch.manual_seed(0)
    dec = DynamicPatternDecoder(in_dims=32, out_dims=48, num_heads=2)
    a, b = torch.randn(2, 7, 32), torch.randn(2, 7, 32) * 3 + 1
    out_a, out_b = dec(a), dec(b)
    assert out_a.tokens.shape == (2, 7, 48)
    w = out_a.router_weights
    assert w.shape == (2, 3) and (w > 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(2))
    # the router scores depend on the tokens
    assert not torch.allclose(out_a.router_weights, out_b.router_weights)
    # experts are generated per input: different images, different experts
    ea, _ = dec.generator(a)
    eb, _ = dec.generator(b)
    assert ea.shape == (2, 3, 32, 48)
    assert (ea - eb).abs().max() > 1e-3
    # and the three experts differ from each other (no symmetric init)
    assert (ea[:, 0] - ea[:, 1]).abs().max() > 1e-3
    assert (ea[:, 1] - ea[:, 2]).abs().max() > 1e-3


def test_output_is_router_weighted_sum_of_experts():
    """Eq. 1: sum_i W_i E_i(F + SA(F)) (then GELU + LN as the authors)."""
    torch.manual_seed(0)
    dec = DynamicPatternDecoder(in_dims=16, out_dims=24, num_heads=2).eval()
    x = torch.randn(3, 5, 16)
    out = dec(x)
    experts, _ = dec.generator(x)
    w = dec.router(x)
    h = dec.self_attn(x)
    manual = sum(w[:, i, None, None] * (h @ experts[:, i])
                 for i in range(3)) * dec.weight_scale
    manual = dec.out_norm(torch.nn.functional.gelu(manual))
    torch.testing.assert_close(out.tokens, manual, rtol=1e-4, atol=1e-5)


def test_low_rank_generator_is_smaller_and_works():
    full = DynamicPatternDecoder(in_dims=192, out_dims=768)
    low = DynamicPatternDecoder(in_dims=192, out_dims=768, expert_rank=16)
    assert n_params(full) == 29_351_235  # the count in the docstring
    assert n_params(low) == 3_592_515
    out = low(torch.randn(2, 4, 192))
    assert out.tokens.shape == (2, 4, 768)
    assert out.expert_params.shape == (2, 3, 16 * (192 + 768))


def test_authors_auxiliary_losses_are_options():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 16)
    off = DynamicPatternDecoder(16, 24, num_heads=2)
    assert off.loss({'global': off(x)}) == {}
    on = DynamicPatternDecoder(
        16, 24, num_heads=2, router_loss_weight=0.1, expert_l2_weight=0.025)
    outs = {'global': on(x), 'relation': on(x)}
    losses = on.loss(outs)
    w = outs['global'].router_weights
    expected_router = 0.1 * 0.5 * (-w[:, 0].log().mean() -
                                   w[:, 2].log().mean())
    torch.testing.assert_close(losses['loss_router'], expected_router)
    expected_l2 = 0.025 * outs['global'].expert_params.pow(2).mean()
    torch.testing.assert_close(losses['loss_expert_l2'], expected_l2)


@pytest.mark.parametrize('cls',
                         [LinearDecoder, TransformerDecoder, MoEDecoder])
def test_table11_variants(cls):
    torch.manual_seed(0)
    kwargs = dict(num_heads=2) if cls is MoEDecoder else {}
    dec = cls(in_dims=16, out_dims=24, **kwargs)
    out = dec(torch.randn(2, 5, 16))
    assert out.tokens.shape == (2, 5, 24)
    if cls is MoEDecoder:
        torch.testing.assert_close(out.router_weights.sum(-1), torch.ones(2))
        # fixed experts: no generated parameters
        assert out.expert_params is None
    else:
        assert out.router_weights is None
    out.tokens.sum().backward()
    assert all(p.grad is not None for p in dec.parameters())
