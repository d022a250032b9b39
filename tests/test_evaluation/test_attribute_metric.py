"""mmdpal.PedestrianAttributeMetric: label-based mA and instance-based
accuracy / precision / recall / F1, checked on a hand-worked example, a
perfect prediction and a control."""
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

import mmdpal  # noqa: F401
from mmdpal.evaluation import pedestrian_attribute_scores
from mmdpal.registry import METRICS

GT = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
# scores thresholded at 0.5 (0.5 counts as present):
#   image 0 -> [1, 0, 0], image 1 -> [0, 1, 1], image 2 -> [0, 0, 0]
SCORES = np.array([[0.9, 0.2, 0.4], [0.1, 0.8, 0.5], [0.3, 0.49, 0.0]])
# label-based, (TPR + TNR) / 2 per attribute:
#   0: TPR 1/2 (image 0 of 0 and 2), TNR 1/1 -> 0.75
#   1: TPR 1/2 (image 1 of 1 and 2), TNR 1/1 -> 0.75
#   2: TPR 0/1, TNR 1/2 (image 1 is a false positive) -> 0.25
# instance-based (|P & G|, |P | G|, |P|, |G|):
#   image 0: 1, 2, 1, 2 -> acc 1/2, prec 1, rec 1/2
#   image 1: 1, 2, 2, 1 -> acc 1/2, prec 1/2, rec 1
#   image 2: 0, 2, 0, 2 -> acc 0, prec 0 (nothing predicted), rec 0
EXPECTED = {
    'mA': (0.75 + 0.75 + 0.25) / 3,
    'accuracy': 1 / 3,
    'precision': 0.5,
    'recall': 0.5,
    'F1': 0.5,  # of the mean precision and recall
}


def test_scores_hand_worked():
    assert pedestrian_attribute_scores(SCORES >= 0.5,
                                       GT) == pytest.approx(EXPECTED)


def build_metric(**kwargs):
    init_default_scope('mmdpal')
    return METRICS.build(dict(type='PedestrianAttributeMetric', **kwargs))


def evaluate(metric, scores, gt, as_score=False):
    """Feed the metric as the runner does: mmpretrain DataSamples of a
    multi-label head (pred_score) with the positive indices as gt_label (or
    a 0/1 gt_score), in batches of two."""
    samples = []
    for score, label in zip(scores, gt):
        sample = DataSample().set_pred_score(torch.tensor(score))
        if as_score:
            sample.set_gt_score(torch.tensor(label, dtype=torch.float32))
        else:
            sample.set_gt_label(np.flatnonzero(label))
        samples.append(sample.to_dict())
    for i in range(0, len(samples), 2):
        metric.process({}, samples[i:i + 2])
    return metric.evaluate(len(samples))


@pytest.mark.parametrize('as_score', [False, True])
def test_metric_hand_worked(as_score):
    metrics = evaluate(build_metric(), SCORES, GT, as_score)
    assert metrics == pytest.approx({
        f'par/{k}': v
        for k, v in EXPECTED.items()
    })


def test_metric_perfect_prediction_scores_one_and_a_control_lower():
    rng = np.random.default_rng(0)
    gt = (rng.random((20, 26)) < 0.3).astype(int)
    gt[np.arange(20), np.arange(20)] = 1  # no image without attributes
    gt[np.arange(20), np.arange(20) + 1] = 0
    # every attribute has positives and negatives (else its TPR or TNR is
    # 0 by the reference code's convention)
    assert gt.any(0).all() and (1 - gt).any(0).all()
    perfect = evaluate(build_metric(), gt * 0.8 + 0.1, gt)
    assert perfect == pytest.approx({
        'par/mA': 1.0,
        'par/accuracy': 1.0,
        'par/precision': 1.0,
        'par/recall': 1.0,
        'par/F1': 1.0
    })
    control = evaluate(build_metric(), rng.random((20, 26)), gt)
    assert all(v < 0.8 for v in control.values()), control


def test_threshold_is_an_argument():
    metrics = evaluate(build_metric(threshold=0.45), SCORES, GT)
    # image 2 now predicts attribute 1: a true positive
    assert metrics['par/recall'] == pytest.approx((0.5 + 1 + 0.5) / 3)
