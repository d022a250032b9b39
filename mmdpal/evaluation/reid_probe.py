"""ReID probe: how well the student's own embedding re-identifies people.

No fine-tuning: the frozen student embeds a query and a gallery set (e.g.
``Market1501(split='test')``) and :class:`ReIDMetric` ranks them (kNN by
cosine distance). During pretraining it runs as the validation loop; after,
``tools/analysis_tools/reid_probe.py`` runs it on a student checkpoint.
"""
from typing import Callable, Dict, List

import torch
from mmengine.evaluator import Evaluator
from mmengine.model import is_model_wrapper
from mmengine.runner import ValLoop
from mmengine.runner.amp import autocast

from mmdpal.registry import LOOPS


def student_embedding(backbone: torch.nn.Module,
                      inputs: torch.Tensor) -> torch.Tensor:
    """The student's embedding of a batch of images, (B, C): the class token
    of a ViT (``out_type='raw'`` tokens or ``'cls_token'``), or the mean of
    the patch features of a backbone giving a (B, C, h, w) map (Swin), as
    DPAL's global alignment uses them."""
    feats = backbone(inputs)[-1]
    if feats.dim() == 4:
        return feats.flatten(2).mean(dim=2)
    if feats.dim() == 3:
        if not getattr(backbone, 'with_cls_token', True):
            raise ValueError(
                'ReID probe: the backbone gives patch tokens without a class '
                'token; build it with with_cls_token=True')
        return feats[:, 0]
    return feats


@torch.no_grad()
def embed_reid_batch(backbone: torch.nn.Module, preprocess: Callable,
                     data_batch: dict) -> list:
    """The data samples of one batch, each with its ``pred_feature``: the
    student's embedding of its image, normalised by ``preprocess`` (the
    model's data preprocessor). Call it with the backbone in eval mode."""
    data = preprocess(data_batch, False)
    feats = student_embedding(backbone, data['inputs'])
    samples = data['data_samples']
    for sample, feat in zip(samples, feats):
        sample.pred_feature = feat
    return samples


def run_reid_probe(backbone: torch.nn.Module, preprocess: Callable, dataloader,
                   evaluator: Evaluator) -> Dict[str, float]:
    """Embed a ReID query/gallery dataloader with the frozen student (eval
    mode, no gradient) and evaluate it (:class:`ReIDMetric`)."""
    was_training = backbone.training
    backbone.eval()
    try:
        for data_batch in dataloader:
            samples = embed_reid_batch(backbone, preprocess, data_batch)
            evaluator.process(data_samples=samples, data_batch=data_batch)
    finally:
        backbone.train(was_training)
    return evaluator.evaluate(len(dataloader.dataset))


@LOOPS.register_module()
class ReIDProbeLoop(ValLoop):
    """Validation of a pretraining run by the ReID probe of its student.

    Use it as ``val_cfg`` of a pretraining config, with a ReID
    ``val_dataloader`` (query + gallery, ``collate_fn=default_collate``) and
    ``val_evaluator=dict(type='mmdpal.ReIDMetric')``; see
    ``configs/downstream/reid/reid-probe_market1501-256x128.py``. The
    student is ``model.backbone`` (frozen while probed: eval mode, no
    gradient), its inputs are normalised by the model's data preprocessor;
    the teacher and the decoder are not used.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The query + gallery dataloader.
        evaluator (Evaluator | dict | list): The ReID metric.
        fp16 (bool): Embed under autocast. Defaults to False.
    """

    def run(self) -> Dict[str, float]:
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')
        model = self.runner.model
        if is_model_wrapper(model):
            model = model.module
        backbone = model.backbone
        was_training = backbone.training
        backbone.eval()
        try:
            for idx, data_batch in enumerate(self.dataloader):
                self.runner.call_hook(
                    'before_val_iter', batch_idx=idx, data_batch=data_batch)
                with autocast(enabled=self.fp16):
                    samples: List = embed_reid_batch(backbone,
                                                     model.data_preprocessor,
                                                     data_batch)
                self.evaluator.process(
                    data_samples=samples, data_batch=data_batch)
                self.runner.call_hook(
                    'after_val_iter',
                    batch_idx=idx,
                    data_batch=data_batch,
                    outputs=samples)
        finally:
            backbone.train(was_training)
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        self.runner.call_hook('after_val_epoch', metrics=metrics)
        self.runner.call_hook('after_val')
        return metrics
