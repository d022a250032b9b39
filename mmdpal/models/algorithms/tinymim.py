"""TinyMIM (Table 1 rival): distil the last block's token relations."""
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample

from mmdpal.registry import MODELS
from ..utils.vit_tokens import block_qkv
from .base import BaseDistiller


def relation_logits(q: torch.Tensor, k: torch.Tensor,
                    v: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """TinyMIM's relations before their softmax: ``q k^T / sqrt(d)`` and
    ``v v^T / sqrt(d)``, each (B, heads, N, N) for (B, heads, N, d)
    inputs (their vit.py ``Attention.forward``, lines 43-51)."""
    scale = q.shape[-1]**-0.5
    return q @ k.transpose(-2, -1) * scale, v @ v.transpose(-2, -1) * scale


@MODELS.register_module()
class TinyMIMDistiller(BaseDistiller):
    """TinyMIM relation distillation of a ViT student.

    `TinyMIM: An Empirical Study of Distilling MIM Pre-trained Models
    <https://arxiv.org/abs/2301.01296>`_, code ``OliverRensu/TinyMIM``
    (``models_tinymim.py``, ``vit.py``). On the global view: the last
    block's query-key and value-value relations of the student,
    ``R_qk = softmax(q k^T / sqrt(d))`` and ``R_vv = softmax(v v^T /
    sqrt(d))`` per head over all 1 + L tokens, match the teacher's last
    block's by KL divergence, :meth:`relation_loss`:
    ``L = KL(R^t_qk || R^s_qk) + KL(R^t_vv || R^s_vv)``, each summed over
    the keys and averaged over images, heads and queries.

    No projector: the student's last block must have the teacher's number
    of heads (TinyMIM's ``last_heads``; 12 for PATH-B: the config sets
    ``backbone.layer_cfgs``). As in TinyMIM, the student stops at that
    block's attention: its projection, FFN and the final norm get no
    gradient (the config sets ``find_unused_parameters=True``). The local
    and multi-person views of the DPAL pipeline are not used.

    Args:
        backbone (dict): The student ViT (``mmpretrain.VisionTransformer``).
        teacher (dict): The frozen teacher (:class:`ViTTeacher`,
            ``align='resize_input'``: its grid is the student's).
        qk_weight (float): Weight of the query-key term. Defaults to 1.
        vv_weight (float): Weight of the value-value term. Defaults to 1.
        **kwargs: :class:`BaseDistiller`'s other options
            (``student_pos_embed_resize``, ``compile_blocks``,
            ``data_preprocessor``, ``init_cfg``).
    """

    def __init__(self,
                 backbone: dict,
                 teacher: dict,
                 qk_weight: float = 1.,
                 vv_weight: float = 1.,
                 **kwargs):
        super().__init__(backbone=backbone, teacher=teacher, **kwargs)
        self.require_vit_student('TinyMIMDistiller')
        self.require_teacher_grid('TinyMIMDistiller')
        heads = self.backbone.layers[-1].attn.num_heads
        teacher_heads = self.teacher.vit.layers[-1].attn.num_heads
        if heads != teacher_heads:
            raise ValueError(
                f'TinyMIMDistiller relates head to head: backbone.layer_cfgs'
                f'[-1].num_heads={heads} is not the teacher last block\'s '
                f'{teacher_heads}: set it to {teacher_heads}')
        self.qk_weight = qk_weight
        self.vv_weight = vv_weight
        self.compile_blocks()

    def student_last_qkv(self, img: torch.Tensor) -> Tuple[tuple, tuple]:
        """Query, key, value of the student's last block (B, heads, 1 + L,
        d), the block's output not computed (models_tinymim.py lines
        79-84), and the grid (h, w)."""
        x, grid = self.student_embed(img)
        for layer in self.backbone.layers[:-1]:
            x = layer(x)
        return block_qkv(self.backbone.layers[-1], x), grid

    @staticmethod
    def relation_loss(student_logits: torch.Tensor,
                      teacher_logits: torch.Tensor) -> torch.Tensor:
        """``KL(softmax(teacher) || softmax(student))`` summed over the keys,
        averaged over the rest (models_tinymim.py lines 89-91)."""
        return F.kl_div(
            student_logits.log_softmax(dim=-1),
            teacher_logits.softmax(dim=-1),
            reduction='none').sum(dim=-1).mean()

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """TinyMIM on the global view of ``inputs = [global, *locals,
        multi]``."""
        img = inputs[0]
        s_qkv, grid = self.student_last_qkv(img)
        s_qk, s_vv = relation_logits(*s_qkv)
        t_qk, t_vv = relation_logits(*self.teacher.last_block_qkv(img, grid))
        return dict(
            loss_qk=self.qk_weight * self.relation_loss(s_qk, t_qk),
            loss_vv=self.vv_weight * self.relation_loss(s_vv, t_vv))
