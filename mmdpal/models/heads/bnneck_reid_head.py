"""The BNNeck ReID head of TransReID, as the DPAL authors fine-tune with."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.evaluation.metrics import Accuracy

from mmdpal.registry import MODELS


@MODELS.register_module()
class BNNeckReIDHead(BaseModule):
    """BNNeck on the backbone's embedding, as in the authors' ReID trainer
    (Human-centric-Vision-Perception, I2I-ReID/model/make_model.py,
    ``build_transformer``; TransReID's): the embedding ``f`` (B, C) is used
    as is for the triplet loss and at test time (``TEST.NECK_FEAT:
    'before'``); its BatchNorm1d copy feeds a bias-free linear classifier
    for the identity loss.

    Where it differs from mmdet's ``LinearReIDHead``, on purpose:

    - no Linear before the BNNeck (mmdet's always has ``fc_out``);
    - the BatchNorm1d bias is frozen at 0 (``bottleneck.bias.requires_grad_
      (False)``), its weight starts at 1 (``weights_init_kaiming``);
    - the classifier has no bias, its weight drawn from N(0, 0.001^2)
      (``weights_init_classifier``).

    It plugs into mmdet's ``BaseReID`` as ``LinearReIDHead`` does (``loss``,
    ``predict``; ``pred_feature`` is the embedding before the BNNeck).

    Args:
        in_channels (int): Width of the embedding (the backbone's output).
        num_classes (int): Number of training identities.
        loss_cls (dict): Identity loss on the classifier's scores.
        loss_triplet (dict): Metric loss on the embedding.
        topk (int | Sequence[int]): Top-k training accuracies to log.
            Defaults to (1, ).
        init_cfg (dict | list[dict], optional): Defaults to the authors'
            classifier init.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 loss_cls: dict,
                 loss_triplet: dict,
                 topk: Union[int, Sequence[int]] = (1, ),
                 init_cfg: Optional[Union[dict, List[dict]]] = dict(
                     type='Normal', layer='Linear', std=0.001)):
        super().__init__(init_cfg=init_cfg)
        self.topk = (topk, ) if isinstance(topk, int) else tuple(topk)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_triplet = MODELS.build(loss_triplet)
        self.bn = nn.BatchNorm1d(in_channels)  # weight 1, bias 0
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(in_channels, num_classes, bias=False)

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """The embedding (B, C): the last of the backbone's outputs."""
        return feats[-1]

    def loss(self, feats: Tuple[torch.Tensor], data_samples: list) -> dict:
        """Triplet loss on the embedding, identity loss on the classifier's
        scores of its BatchNorm1d copy, and the training accuracy."""
        feats = self(feats)
        labels = torch.cat([s.gt_label.label for s in data_samples])
        labels = labels.to(feats.device)
        scores = self.classifier(self.bn(feats))  # (B, num_classes)
        losses = dict(
            triplet_loss=self.loss_triplet(feats, labels),
            ce_loss=self.loss_cls(scores, labels))
        accuracies = Accuracy.calculate(scores, labels, topk=self.topk)
        losses.update({
            f'accuracy_top-{k}': a
            for k, a in zip(self.topk, accuracies)
        })
        return losses

    def predict(self,
                feats: Tuple[torch.Tensor],
                data_samples: Optional[list] = None) -> list:
        """Each data sample with its ``pred_feature``: the embedding before
        the BNNeck."""
        feats = self(feats)
        if data_samples is None:
            from mmdet.structures import ReIDDataSample
            data_samples = [ReIDDataSample() for _ in range(len(feats))]
        for sample, feat in zip(data_samples, feats):
            sample.pred_feature = feat
        return data_samples
