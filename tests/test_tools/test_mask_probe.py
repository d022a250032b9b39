"""The person-mask probe of the demo (tools/analysis_tools/mask_probe.py) on
generated masks with known answers: tokens that carry the mask give a
near-perfect score, tokens that carry nothing (or whose targets were
shuffled between images) give the image-free position prior's score,
identical tokens give identical scores, and the bootstrap intervals have
the width the sample says."""
import numpy as np
import pytest
import torch
from mask_probe import (bootstrap_ci, mask_iou, paired_difference_ci,
                        patch_fractions, position_prior, run_mask_probe)

GRID = (8, 4)  # tokens of a 128x64 view, patch 16; masks at 4 px a patch


def person_masks(num, seed):
    """(num, 32, 16) boxes around the centre, jittered, as in crops."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(num, 32, 16)
    for m in masks:
        h = int(torch.randint(14, 26, (1, ), generator=g))
        w = int(torch.randint(5, 10, (1, ), generator=g))
        y = int(torch.randint(0, 32 - h + 1, (1, ), generator=g))
        x = int(torch.randint(2, 16 - w - 1, (1, ), generator=g))
        m[y:y + h, x:x + w] = 1
    return masks


def tokens_of(masks, seed, informative=True, dims=16):
    """(N, 32, dims) noise; channel 0 is the patch's mask fraction."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(len(masks), GRID[0] * GRID[1], dims, generator=g)
    if informative:
        tokens[..., 0] = patch_fractions(masks, GRID).float() * 3
    return tokens


@pytest.fixture(scope='module')
def data():
    train, test = person_masks(400, 0), person_masks(200, 1)
    return train, test


def prior_scores(train, test):
    prior = position_prior(patch_fractions(train, GRID), len(test))
    return mask_iou(prior, test, GRID)


def test_tokens_that_carry_the_mask_score_near_one(data):
    train, test = data
    iou = run_mask_probe(
        tokens_of(train, 0), train, tokens_of(test, 1), test, GRID)
    assert iou.shape == (200, )
    # the grid resolution allows 0.88 (the true fractions, upsampled)
    assert iou.mean() > 0.85
    assert iou.mean() > prior_scores(train, test).mean() + 0.2


@pytest.mark.parametrize('how', ['noise', 'shuffled'])
def test_tokens_that_carry_nothing_score_the_position_prior(data, how):
    train, test = data
    if how == 'noise':
        train_tokens = tokens_of(train, 0, informative=False)
        test_tokens = tokens_of(test, 1, informative=False)
        train_masks = train
    else:  # the identity of the training images shuffled
        train_tokens, test_tokens = tokens_of(train, 0), tokens_of(test, 1)
        train_masks = train[torch.randperm(
            len(train), generator=torch.Generator().manual_seed(3))]
    iou = run_mask_probe(train_tokens, train_masks, test_tokens, test, GRID)
    prior = prior_scores(train, test)
    assert prior.mean() > 0.2  # a real reference, not 0
    difference = paired_difference_ci(iou.numpy(), prior.numpy())
    assert difference['low'] <= 0.0 <= difference['high'] or \
        abs(difference['mean']) < 0.03, difference


def test_identical_tokens_give_identical_scores(data):
    train, test = data
    first = run_mask_probe(
        tokens_of(train, 0), train, tokens_of(test, 1), test, GRID)
    again = run_mask_probe(
        tokens_of(train, 0).clone(), train, tokens_of(test, 1), test, GRID)
    assert torch.equal(first, again)
    assert paired_difference_ci(first.numpy(), again.numpy()) == dict(
        mean=0.0, low=0.0, high=0.0, n=200)


def test_mask_iou_by_hand():
    masks = torch.zeros(3, 8, 4)
    masks[0, :4] = 1  # the top half
    masks[1, :, :2] = 1  # the left half
    fractions = torch.zeros(3, 2, 2)
    fractions[0, 0] = 1  # top half predicted: IoU 1
    fractions[1, :, :] = 1  # everything: IoU 1/2
    # image 2: nothing predicted, nothing there: 1
    iou = mask_iou(fractions.flatten(1), masks, (2, 2))
    assert iou.tolist() == pytest.approx([1.0, 0.5, 1.0])
    assert patch_fractions(masks, (2, 2))[1].tolist() == [1, 0, 1, 0]
    with pytest.raises(ValueError, match='not a multiple of the token grid'):
        patch_fractions(torch.zeros(1, 9, 4), (2, 2))


def test_bootstrap_interval_has_the_width_of_the_sample():
    constant = bootstrap_ci([0.7] * 50)
    assert constant == pytest.approx(dict(mean=0.7, low=0.7, high=0.7, n=50))
    values = np.random.default_rng(0).normal(0.5, 0.1, size=400)
    ci = bootstrap_ci(values)
    half = 1.96 * values.std() / np.sqrt(len(values))
    assert ci['low'] < values.mean() < ci['high']
    assert ci['high'] - ci['low'] == pytest.approx(2 * half, rel=0.15)
    with pytest.raises(ValueError, match='same images'):
        paired_difference_ci([1, 2], [1, 2, 3])
