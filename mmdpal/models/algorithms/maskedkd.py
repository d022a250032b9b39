"""MaskedKD (Table 1 rival), feature form: the teacher sees the patches the
student attends to."""
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.structures import DataSample

from mmdpal.registry import MODELS
from ..utils.vit_tokens import block_qkv
from .base import BaseDistiller


@MODELS.register_module()
class MaskedKDDistiller(BaseDistiller):
    """MaskedKD in feature form.

    `The Role of Masking Strategy in Knowledge Distillation` (MaskedKD,
    Son et al.), code ``effl-lab/MaskedKD`` (``losses.py``,
    ``models_teacher.py``, ``models_student.py``). On the global view:

    1. the student encodes the whole view; the class token's attention
       over the patches in its last block, averaged over heads, picks the
       ``int(L * keep_ratio)`` most attended patches, :meth:`kept_patches`
       (theirs: ``topk(attn.mean(1)[:, 0, 1:], len_num_keep)``);
    2. the teacher encodes only those patches (with their position
       embeddings) and its class token;
    3. :meth:`class_token_loss`: the student's class token, through a
       linear head ``W`` (C_s -> C_t), regresses the teacher's:
       ``L = MSE(W s_cls, t_cls(kept))``.

    MaskedKD distils logits (KL at temperature tau, plus the label loss);
    pretraining has neither labels nor a classifier, so its feature form
    regresses the class token the logits are read from (the L2 Proteus and
    DPAL's Eq. 4 use for it). The local and multi-person views of the DPAL
    pipeline are not used.

    Args:
        backbone (dict): The student ViT (``mmpretrain.VisionTransformer``).
        teacher (dict): The frozen teacher (:class:`ViTTeacher`,
            ``align='resize_input'``: its grid is the student's).
        student_dims (int): Student width C_s (the head's input).
        teacher_dims (int): Teacher width C_t (the head's output).
        keep_ratio (float): Share of the patches the teacher sees. Defaults
            to 0.5 (theirs: 98 of 196).
        loss_weight (float): Weight of the loss. Defaults to 1.
        **kwargs: :class:`BaseDistiller`'s other options
            (``student_pos_embed_resize``, ``compile_blocks``,
            ``data_preprocessor``, ``init_cfg``).
    """

    def __init__(self,
                 backbone: dict,
                 teacher: dict,
                 student_dims: int,
                 teacher_dims: int,
                 keep_ratio: float = 0.5,
                 loss_weight: float = 1.,
                 **kwargs):
        super().__init__(backbone=backbone, teacher=teacher, **kwargs)
        self.require_vit_student('MaskedKDDistiller')
        self.require_teacher_grid('MaskedKDDistiller')
        self.require_widths('MaskedKDDistiller', student_dims, teacher_dims)
        if not 0 < keep_ratio <= 1:
            raise ValueError(f'keep_ratio={keep_ratio}: use a value in (0, 1]')
        self.keep_ratio = keep_ratio
        self.loss_weight = loss_weight
        self.head = nn.Linear(student_dims, teacher_dims)
        self.compile_blocks()

    def student_cls_and_attention(
        self, img: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, Tuple[int, int]]:
        """The student's final-normed class token (B, C_s), its last
        block's class-token attention over the patches averaged over heads
        (B, L), without gradient, and the grid (models_student.py lines
        250-266, 99-111)."""
        x, grid = self.student_embed(img)
        for layer in self.backbone.layers[:-1]:
            x = layer(x)
        with torch.no_grad():
            q, k, _ = block_qkv(self.backbone.layers[-1], x)
            attn = (q[:, :, :1] @ k.transpose(-2, -1) *
                    q.shape[-1]**-0.5).softmax(dim=-1)
        x = self.backbone.ln1(self.backbone.layers[-1](x))
        return x[:, 0], attn[:, :, 0, 1:].mean(dim=1), grid

    def kept_patches(self, cls_attention: torch.Tensor) -> torch.Tensor:
        """The indices (B, K) of the K = ``int(L * keep_ratio)`` most
        attended patches (losses.py line 32)."""
        num = int(cls_attention.shape[1] * self.keep_ratio)
        return cls_attention.topk(num, dim=1).indices

    def class_token_loss(self, s_cls: torch.Tensor,
                         t_cls: torch.Tensor) -> torch.Tensor:
        """``MSE(W s_cls, t_cls)``: the feature form of losses.py lines
        40-44."""
        return self.loss_weight * F.mse_loss(self.head(s_cls), t_cls)

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """MaskedKD on the global view of ``inputs = [global, *locals,
        multi]``."""
        img = inputs[0]
        s_cls, cls_attention, grid = self.student_cls_and_attention(img)
        keep = self.kept_patches(cls_attention)
        t_cls = self.teacher.tokens_of_kept_patches(img, grid, keep)[:, 0]
        return dict(loss_masked_kd=self.class_token_loss(s_cls, t_cls))
