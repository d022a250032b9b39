"""Multi-scale + flip test of human parsing, as the authors' LIP evaluation
merges it."""
from typing import List, Sequence, Tuple

import torch
from mmengine.model import BaseTTAModel
from mmengine.structures import PixelData

from mmdpal.registry import MODELS


@MODELS.register_module()
class ParsingTTAModel(BaseTTAModel):
    """Test-time augmentation of a parsing segmentor as the authors' LIP
    evaluation merges it (Human-centric-Vision-Perception, HumanParsing/
    evaluate.py ``multi_scale_testing``, ``--multi-scales
    0.5,0.75,1.0,1.25,1.5 --flip``): the raw logits of every scale and of
    the flipped image are averaged, those of a flipped image with their
    left / right classes swapped (``flipped_idx``), then the argmax.

    mmseg's ``SegTTAModel`` averages softmax probabilities and does not swap
    the left / right channels of the flipped image (a left arm there is a
    right arm here). The flipped logits are flipped back by mmseg's
    segmentor (``postprocess_result``) before they get here.

    Args:
        flip_pairs (Sequence[tuple]): Left / right class pairs.
        module (dict): The segmentor.
    """

    def __init__(self, flip_pairs: Sequence[Tuple[int, int]], **kwargs):
        super().__init__(**kwargs)
        self.flip_pairs = [tuple(p) for p in flip_pairs]

    def _unflip_channels(self, logits: torch.Tensor) -> torch.Tensor:
        order = list(range(logits.shape[0]))
        for a, b in self.flip_pairs:
            order[a], order[b] = b, a
        return logits[order]

    def merge_preds(self, data_samples_list: List[list]) -> list:
        predictions = []
        for samples in data_samples_list:
            logits = 0
            for sample in samples:
                logit = sample.seg_logits.data  # (C, H, W)
                if sample.metainfo.get('flip', False):
                    logit = self._unflip_channels(logit)
                logits = logits + logit
            logits = logits / len(samples)
            merged = samples[0]
            merged.seg_logits = PixelData(data=logits)
            merged.pred_sem_seg = PixelData(data=logits.argmax(0)[None])
            predictions.append(merged)
        return predictions
