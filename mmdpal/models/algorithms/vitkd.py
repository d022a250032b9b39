"""ViTKD (Table 1 rival): mimic the shallow layers, generate the deep one."""
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.structures import DataSample

from mmdpal.registry import MODELS
from ..utils.vit_tokens import block_outputs
from .base import BaseDistiller


def random_token_mask(batch: int, length: int, ratio: float,
                      device: torch.device) -> torch.Tensor:
    """MAE's per-sample random masking as ViTKD's ``random_masking``: the
    ``int(L * (1 - ratio))`` tokens of smallest uniform noise are kept.

    Returns:
        Tensor: (B, L) bool, True where the token is masked.
    """
    noise = torch.rand(batch, length, device=device)
    keep = noise.argsort(dim=1)[:, :int(length * (1 - ratio))]
    return torch.ones_like(noise, dtype=torch.bool).scatter(1, keep, False)


@MODELS.register_module()
class ViTKDDistiller(BaseDistiller):
    """ViTKD feature distillation of a ViT student, as a pretraining method.

    `ViTKD: Practical Guidelines for ViT feature knowledge distillation
    <https://arxiv.org/abs/2209.02432>`_, code ``yzd-v/cls_KD``
    (``mmcls/models/dis_losses/vitkd.py``). On the global view only:

    * mimicking, :meth:`mimic_loss`: the patch tokens after each shallow
      block l in ``mimic_layers`` (0 and 1), projected by a linear layer per
      block, regress the teacher's:
      ``L_mim = alpha * sum_l ||W_l S_l - T_l||^2 / B``;
    * generation, :meth:`generation_loss`: the student's final-normed patch
      tokens, projected, a random ``mask_ratio`` of them replaced by a
      learned mask token, are turned by two 3x3 convolutions on the token
      grid (``G``) into the teacher's final-normed patch tokens, at the
      masked places only:
      ``L_gen = beta / ratio * sum_masked ||G(M(W S_L)) - T_L||^2 / B``.

    The local and multi-person views of the DPAL pipeline are not used.

    Args:
        backbone (dict): The student ViT (``mmpretrain.VisionTransformer``).
        teacher (dict): The frozen teacher (:class:`ViTTeacher`,
            ``align='resize_input'``: its grid is the student's).
        student_dims (int): Student width C_s (the projectors' input).
        teacher_dims (int): Teacher width C_t (the projectors' output).
        mimic_layers (Sequence[int]): The shallow blocks mimicked (0-based).
            Defaults to (0, 1), ViTKD's.
        mask_ratio (float): lambda, the masked share of the deep tokens.
            Defaults to 0.5.
        mimic_weight (float): alpha. Defaults to 3e-5.
        generation_weight (float): beta. Defaults to 3e-6.
        **kwargs: :class:`BaseDistiller`'s other options
            (``student_pos_embed_resize``, ``compile_blocks``,
            ``data_preprocessor``, ``init_cfg``).
    """

    def __init__(self,
                 backbone: dict,
                 teacher: dict,
                 student_dims: int,
                 teacher_dims: int,
                 mimic_layers: Sequence[int] = (0, 1),
                 mask_ratio: float = 0.5,
                 mimic_weight: float = 3e-5,
                 generation_weight: float = 3e-6,
                 **kwargs):
        super().__init__(backbone=backbone, teacher=teacher, **kwargs)
        self.require_vit_student('ViTKDDistiller')
        self.require_teacher_grid('ViTKDDistiller')
        self.require_widths('ViTKDDistiller', student_dims, teacher_dims)
        depth = min(len(self.backbone.layers), len(self.teacher.vit.layers))
        if not mimic_layers or not all(0 <= i < depth - 1
                                       for i in mimic_layers):
            raise ValueError(
                f'mimic_layers={list(mimic_layers)}: use shallow blocks of '
                f'both student and teacher, indices in [0, {depth - 2}]')
        if not 0 < mask_ratio < 1:
            raise ValueError(f'mask_ratio={mask_ratio}: use a value in (0, 1)')
        self.mimic_layers = tuple(mimic_layers)
        self.mask_ratio = mask_ratio
        self.mimic_weight = mimic_weight
        self.generation_weight = generation_weight
        # the projectors: one linear layer per mimicked block, one for the
        # deep tokens, the mask token and the generation block
        self.mimic_projs = nn.ModuleList(
            nn.Linear(student_dims, teacher_dims) for _ in mimic_layers)
        self.deep_proj = nn.Linear(student_dims, teacher_dims)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, teacher_dims))
        self.generation = nn.Sequential(
            nn.Conv2d(teacher_dims, teacher_dims, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(teacher_dims, teacher_dims, 3, padding=1))
        self.compile_blocks()

    def student_block_tokens(
            self, img: torch.Tensor) -> Tuple[List[torch.Tensor], tuple]:
        """The student's tokens after each mimicked block and after the last
        (final-normed), (B, 1 + L, C_s) each, and the grid."""
        x, grid = self.student_embed(img)
        last = len(self.backbone.layers) - 1
        return block_outputs(self.backbone, x,
                             self.mimic_layers + (last, )), grid

    def mimic_loss(self, student: List[torch.Tensor],
                   teacher: List[torch.Tensor]) -> torch.Tensor:
        """L_mim: ``alpha * sum_l ||W_l S_l - T_l||^2 / B`` over the patch
        tokens of the shallow blocks (vitkd.py lines 59-68)."""
        B = student[0].shape[0]
        return self.mimic_weight * sum(
            F.mse_loss(proj(s[:, 1:]), t[:, 1:], reduction='sum')
            for proj, s, t in zip(self.mimic_projs, student, teacher)) / B

    def generation_loss(self, student: torch.Tensor, teacher: torch.Tensor,
                        grid: Tuple[int, int]) -> torch.Tensor:
        """L_gen: ``beta / ratio * sum_masked ||G(M(W S)) - T||^2 / B`` over
        the final-normed patch tokens (vitkd.py lines 70-89)."""
        x = self.deep_proj(student[:, 1:])
        B, L, C = x.shape
        mask = random_token_mask(B, L, self.mask_ratio, x.device)
        x = torch.where(mask[..., None], self.mask_token.to(x.dtype), x)
        x = x.transpose(1, 2).reshape(B, C, *grid)
        x = self.generation(x).flatten(2).transpose(1, 2)
        err = (x - teacher[:, 1:]).pow(2) * mask[..., None]
        return self.generation_weight / self.mask_ratio * err.sum() / B

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """ViTKD on the global view of ``inputs = [global, *locals,
        multi]``."""
        global_view = inputs[0]
        (*s_shallow, s_deep), grid = self.student_block_tokens(global_view)
        last = len(self.teacher.vit.layers) - 1
        *t_shallow, t_deep = self.teacher.block_tokens(
            global_view, grid, self.mimic_layers + (last, ))
        return dict(
            loss_mimic=self.mimic_loss(s_shallow, t_shallow),
            loss_generation=self.generation_loss(s_deep, t_deep, grid))
