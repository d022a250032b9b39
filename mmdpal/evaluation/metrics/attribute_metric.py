"""Pedestrian attribute recognition metric (label- and instance-based)."""
from typing import Dict, List, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from mmdpal.registry import METRICS

_EPS = 1e-20


def pedestrian_attribute_scores(pred: np.ndarray,
                                gt: np.ndarray) -> Dict[str, float]:
    """The PAR metrics of binary predictions ``pred`` against labels ``gt``,
    both (N images, A attributes), as in the evaluation code of "Rethinking
    of Pedestrian Attribute Recognition" (Jia et al., 2021), which SOLIDER
    and DPAL use.

    - label-based: ``mA`` = mean over attributes of (TPR + TNR) / 2;
    - instance-based, averaged over images: ``accuracy`` = |P & G| / |P | G|,
      ``precision`` = |P & G| / |P|, ``recall`` = |P & G| / |G|; ``F1`` = the
      harmonic mean of the averaged precision and recall.

    An empty denominator counts as 0 (e.g. an image with no attribute
    predicted has precision 0), as in the reference code.
    """
    pred, gt = pred.astype(bool), gt.astype(bool)
    tpr = (pred & gt).sum(0) / (gt.sum(0) + _EPS)
    tnr = (~pred & ~gt).sum(0) / ((~gt).sum(0) + _EPS)
    inter = (pred & gt).sum(1)
    accuracy = (inter / ((pred | gt).sum(1) + _EPS)).mean()
    precision = (inter / (pred.sum(1) + _EPS)).mean()
    recall = (inter / (gt.sum(1) + _EPS)).mean()
    return dict(
        mA=float(((tpr + tnr) / 2).mean()),
        accuracy=float(accuracy),
        precision=float(precision),
        recall=float(recall),
        F1=float(2 * precision * recall / (precision + recall + _EPS)))


@METRICS.register_module()
class PedestrianAttributeMetric(BaseMetric):
    """Label-based mA and instance-based accuracy, precision, recall and F1
    of pedestrian attribute recognition (PA-100K, PETA).

    Each data sample carries ``pred_score`` (per-attribute probabilities, as
    predicted by mmpretrain's ``MultiLabelLinearClsHead``) and ``gt_label``
    (the indices of its positive attributes) or ``gt_score`` (0/1 per
    attribute). An attribute is predicted when its score reaches
    ``threshold``; :func:`pedestrian_attribute_scores` does the rest.

    Args:
        threshold (float): Score from which an attribute counts as present.
            Defaults to 0.5.
        collect_device (str): 'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): Defaults to 'par': the keys are ``par/mA``,
            ``par/accuracy``, ``par/precision``, ``par/recall``, ``par/F1``
            (fractions).
    """
    default_prefix = 'par'

    def __init__(self,
                 threshold: float = 0.5,
                 collect_device: str = 'cpu',
                 prefix: str = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.threshold = threshold

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            score = torch.as_tensor(sample['pred_score']).float().cpu()
            if 'gt_score' in sample:
                gt = torch.as_tensor(sample['gt_score']).cpu() > 0
            else:
                gt = torch.zeros(score.numel(), dtype=torch.bool)
                gt[torch.as_tensor(sample['gt_label']).long().cpu()] = True
            self.results.append(
                dict(pred=(score >= self.threshold).numpy(), gt=gt.numpy()))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        return pedestrian_attribute_scores(
            np.stack([r['pred'] for r in results]),
            np.stack([r['gt'] for r in results]))


@METRICS.register_module()
class PositiveRatioBCEMetric(BaseMetric):
    """The weighted attribute loss of a split, as the authors' PAR trainer
    computes it on its validation split (the test split) to drive
    ``ReduceLROnPlateau`` (attribute_recognition/batch_engine.py
    ``valid_trainer``): mmdpal's ``PositiveRatioBCELoss`` of each image
    (summed over the attributes), averaged over the images.

    The loss is computed from the stored probabilities ``pred_score`` (the
    head keeps no logits): ``-w [y log p + (1 - y) log(1 - p)]`` with ``p``
    clamped to [1e-7, 1 - 1e-7], equal to the loss of the logits wherever
    |logit| < 16. Theirs averages the batch means (the last, smaller batch
    weighs as much as the others); this averages the images.

    ``pos_ratio`` (the training split's positive ratio per attribute) is set
    by ``mmdpal.PositiveRatioHook`` from the model's loss before each
    validation and test.

    Args:
        collect_device (str): 'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): Defaults to 'par': the key is ``par/loss``.
    """
    default_prefix = 'par'

    def __init__(self, collect_device: str = 'cpu', prefix: str = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.pos_ratio = None

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        from mmdpal.models.losses import positive_ratio_weights
        if self.pos_ratio is None:
            raise RuntimeError(
                'PositiveRatioBCEMetric has no positive ratios: add '
                "custom_hooks=[dict(type='mmdpal.PositiveRatioHook')] to the "
                'config')
        if torch.isnan(self.pos_ratio).any():
            raise RuntimeError(
                "PositiveRatioBCEMetric: the model's PositiveRatioBCELoss "
                'has no positive ratios (pos_ratio is NaN), so par/loss would '
                'be NaN: test a checkpoint written by a run with '
                "custom_hooks=[dict(type='mmdpal.PositiveRatioHook')] (it "
                "stores them in 'head.loss_module.pos_ratio')")
        for sample in data_samples:
            score = torch.as_tensor(sample['pred_score']).double().cpu()
            gt = torch.zeros_like(score)
            gt[torch.as_tensor(sample['gt_label']).long().cpu()] = 1
            p = score.clamp(1e-7, 1 - 1e-7)
            bce = -(gt * p.log() + (1 - gt) * (1 - p).log())
            weights = positive_ratio_weights(gt, self.pos_ratio.double())
            self.results.append(float((weights * bce).sum()))

    def compute_metrics(self, results: List[float]) -> Dict[str, float]:
        return dict(loss=float(np.mean(results)))
