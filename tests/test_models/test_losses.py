"""Each alignment loss against a hand computation (Eq. 4, 5, 3 + 6)."""
import math

import pytest
import torch

from mmdpal.models import GlobalAlignLoss, LocalAlignLoss, RelationAlignLoss


def test_global_align_loss_by_hand():
    # M = 2 views, B = 1, C = 2
    views = [torch.tensor([[1., 2.]]), torch.tensor([[0., 0.]])]
    teacher = torch.tensor([[1., 0.]])
    # view 1: ((0)^2 + (2)^2) / 2 = 2 ; view 2: (1 + 0) / 2 = 0.5 ; mean 1.25
    assert GlobalAlignLoss()(views, teacher).item() == pytest.approx(1.25)
    stacked = torch.stack(views)  # (M, B, C) form
    assert GlobalAlignLoss(loss_weight=2.)(stacked, teacher).item() == \
        pytest.approx(2.5)


def test_local_align_loss_by_hand():
    s = torch.tensor([[[1., 1.], [3., 0.]]])  # (B=1, L=2, C=2)
    t = torch.tensor([[[0., 1.], [0., 0.]]])
    mask = torch.tensor([[1., 0.5]])
    # token 0: mask 1 -> (1)^2 + 0 = 1 ; token 1: (0.5 * 3)^2 = 2.25
    # mean over B*L*C = 4 elements -> 3.25 / 4
    assert LocalAlignLoss()(s, t, mask).item() == pytest.approx(3.25 / 4)
    # a zero mask ignores everything
    assert LocalAlignLoss()(s, t, torch.zeros(1, 2)).item() == 0


def test_relation_align_loss_by_hand():
    s = torch.tensor([[[1., 0.], [0., 2.]]])  # (B=1, L=2, C=2)
    teacher = torch.tensor([[[0.9, 0.1], [0.2, 0.8]]])
    # student relation: softmax(F F^T / sqrt(2)) per row
    gram = [[1., 0.], [0., 4.]]
    expected = 0.
    for i in range(2):
        logits = [g / math.sqrt(2) for g in gram[i]]
        z = sum(math.exp(v) for v in logits)
        p = [math.exp(v) / z for v in logits]
        t = teacher[0, i].tolist()
        expected += sum(ti * math.log(ti / pi) for ti, pi in zip(t, p))
    expected /= 2  # mean over rows (and the batch of 1)
    loss = RelationAlignLoss(loss_weight=0.5)(s, teacher)
    assert loss.item() == pytest.approx(0.5 * expected, rel=1e-5)


def test_relation_loss_is_zero_when_relations_agree_and_handles_zeros():
    s = torch.randn(2, 5, 8)
    from mmdpal.models import token_relation
    teacher = token_relation(s).exp()
    assert RelationAlignLoss()(s, teacher).item() == pytest.approx(0, abs=1e-6)
    one_hot = torch.eye(5).expand(2, 5, 5)  # rows with exact zeros
    assert torch.isfinite(RelationAlignLoss()(s, one_hot))
