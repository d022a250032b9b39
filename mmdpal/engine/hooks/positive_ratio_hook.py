import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdpal.evaluation.metrics import PositiveRatioBCEMetric
from mmdpal.models.losses import PositiveRatioBCELoss
from mmdpal.registry import HOOKS


def training_positive_ratio(dataset, num_classes: int) -> torch.Tensor:
    """(A, ) fraction of the images of a multi-label ``dataset`` that have
    each attribute (its samples' ``gt_label``: the positive indices), as the
    authors' PAR code takes it from the training split
    (attribute_recognition/train.py: ``label_ratio = labels.mean(0)``)."""
    counts = torch.zeros(num_classes, dtype=torch.float64)
    for i in range(len(dataset)):
        positives = torch.as_tensor(dataset.get_data_info(i)['gt_label'])
        counts[positives.long()] += 1
    return (counts / len(dataset)).float()


@HOOKS.register_module()
class PositiveRatioHook(Hook):
    """Give ``PositiveRatioBCELoss`` the positive ratios of the training set
    (before training) and ``PositiveRatioBCEMetric`` those of the model's
    loss (before each validation and test: a tested checkpoint brings its
    own)."""

    def _loss(self, runner) -> PositiveRatioBCELoss:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        losses = [
            m for m in model.modules() if isinstance(m, PositiveRatioBCELoss)
        ]
        if len(losses) != 1:
            raise ValueError(
                f'PositiveRatioHook needs one PositiveRatioBCELoss in the '
                f'model, found {len(losses)}: set '
                "model.head.loss=dict(type='mmdpal.PositiveRatioBCELoss', "
                'num_classes=...) or remove the hook')
        return losses[0]

    def before_train(self, runner) -> None:
        loss = self._loss(runner)
        ratio = training_positive_ratio(runner.train_dataloader.dataset,
                                        loss.pos_ratio.numel())
        loss.pos_ratio.copy_(ratio)
        runner.logger.info('PositiveRatioHook: positive ratios of the '
                           f'training set {ratio.tolist()}')

    def _set_metrics(self, runner, evaluator) -> None:
        ratio = self._loss(runner).pos_ratio.detach().cpu()
        for metric in evaluator.metrics:
            if isinstance(metric, PositiveRatioBCEMetric):
                metric.pos_ratio = ratio

    def before_val_epoch(self, runner) -> None:
        self._set_metrics(runner, runner.val_evaluator)

    def before_test_epoch(self, runner) -> None:
        self._set_metrics(runner, runner.test_evaluator)
