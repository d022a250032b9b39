"""Proteus (Table 1 rival): token, feature and masked-patch regression."""
from typing import Dict, List

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.structures import DataSample

from mmdpal.registry import MODELS
from ..utils.vit_tokens import block_outputs
from .base import BaseDistiller


def projection_head(in_dims: int, out_dims: int) -> nn.Sequential:
    """Proteus's head: LayerNorm, then a linear layer C_s -> C_t."""
    return nn.Sequential(nn.LayerNorm(in_dims), nn.Linear(in_dims, out_dims))


def random_patch_masks(num: int, length: int, ratio: float,
                       device: torch.device) -> torch.Tensor:
    """Proteus's ``RandomMaskingGenerator``: ``int(L * ratio)`` patches of
    each image, placed uniformly at random.

    Returns:
        Tensor: (num, L) bool, True where the patch is masked.
    """
    noise = torch.rand(num, length, device=device)
    masked = noise.argsort(dim=1)[:, :int(length * ratio)]
    return torch.zeros_like(noise, dtype=torch.bool).scatter(1, masked, True)


@MODELS.register_module()
class ProteusDistiller(BaseDistiller):
    """Proteus distillation of a ViT student.

    `Accessing Vision Foundation Models via ImageNet-1K
    <https://arxiv.org/abs/2411.10923>`_, code
    ``BeSpontaneous/Proteus-pytorch`` (``pretrain/models_proteus_dinov2.py``).
    Three L2 (mean squared error) terms on the global view, each through its
    own head (LayerNorm + linear, C_s -> C_t), against the teacher's
    final-normed tokens:

    * token, :meth:`token_loss`: ``MSE(H_tok(s_cls), t_cls)``;
    * feature, :meth:`feature_loss`: ``MSE([H_tok(s_cls), H_fea(s_patch)],
      [t_cls, t_patch])`` over all 1 + L tokens;
    * patch, :meth:`patch_loss`: the first ``int(B * mask_probability)``
      images of the batch are encoded again with ``int(L * mask_ratio)``
      random patch embeddings replaced by a learned mask token;
      ``MSE(H_pat(s_masked), t_patch)`` at the masked patches.

    The local and multi-person views of the DPAL pipeline are not used.

    Args:
        backbone (dict): The student ViT (``mmpretrain.VisionTransformer``).
        teacher (dict): The frozen teacher (:class:`ViTTeacher`,
            ``align='resize_input'``: its grid is the student's).
        student_dims (int): Student width C_s (the heads' input).
        teacher_dims (int): Teacher width C_t (the heads' output).
        mask_probability (float): Share of the batch encoded masked (the
            first images). Defaults to 0.5.
        mask_ratio (float): Share of the patches masked in those images.
            Defaults to 0.5.
        token_weight (float): lambda_token. Defaults to 1.
        feature_weight (float): lambda_fea. Defaults to 1.
        patch_weight (float): lambda_patch. Defaults to 1.
        **kwargs: :class:`BaseDistiller`'s other options
            (``student_pos_embed_resize``, ``compile_blocks``,
            ``data_preprocessor``, ``init_cfg``).
    """

    def __init__(self,
                 backbone: dict,
                 teacher: dict,
                 student_dims: int,
                 teacher_dims: int,
                 mask_probability: float = 0.5,
                 mask_ratio: float = 0.5,
                 token_weight: float = 1.,
                 feature_weight: float = 1.,
                 patch_weight: float = 1.,
                 **kwargs):
        super().__init__(backbone=backbone, teacher=teacher, **kwargs)
        self.require_vit_student('ProteusDistiller')
        self.require_teacher_grid('ProteusDistiller')
        self.require_widths('ProteusDistiller', student_dims, teacher_dims)
        for key, value in (('mask_probability', mask_probability),
                           ('mask_ratio', mask_ratio)):
            if not 0 < value <= 1:
                raise ValueError(f'{key}={value}: use a value in (0, 1]')
        self.mask_probability = mask_probability
        self.mask_ratio = mask_ratio
        self.token_weight = token_weight
        self.feature_weight = feature_weight
        self.patch_weight = patch_weight
        self.token_head = projection_head(student_dims, teacher_dims)
        self.feature_head = projection_head(student_dims, teacher_dims)
        self.patch_head = projection_head(student_dims, teacher_dims)
        # DINOv2's mask token, zeros at the start (their student's)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, student_dims))
        self.compile_blocks()

    def masked_student_patches(self, img: torch.Tensor,
                               mask: torch.Tensor) -> torch.Tensor:
        """The student's final-normed patch tokens (B, L, C_s) with the
        patch embeddings at ``mask`` (B, L) replaced by the mask token."""
        x, _ = self.student_embed(img, mask, self.mask_token)
        last = len(self.backbone.layers) - 1
        return block_outputs(self.backbone, x, [last])[0][:, 1:]

    def token_loss(self, s_cls: torch.Tensor,
                   t_cls: torch.Tensor) -> torch.Tensor:
        """``lambda_token * MSE(H_tok(s_cls), t_cls)``
        (models_proteus_dinov2.py lines 146, 152, 163)."""
        return self.token_weight * F.mse_loss(self.token_head(s_cls), t_cls)

    def feature_loss(self, s_cls: torch.Tensor, s_patch: torch.Tensor,
                     t_cls: torch.Tensor,
                     t_patch: torch.Tensor) -> torch.Tensor:
        """``lambda_fea * MSE([H_tok(s_cls), H_fea(s_patch)], [t_cls,
        t_patch])`` (lines 144-146, 155-157, 164)."""
        student = torch.cat(
            (self.token_head(s_cls)[:, None], self.feature_head(s_patch)), 1)
        teacher = torch.cat((t_cls[:, None], t_patch), 1)
        return self.feature_weight * F.mse_loss(student, teacher)

    def patch_loss(self, s_masked: torch.Tensor, t_patch: torch.Tensor,
                   mask: torch.Tensor) -> torch.Tensor:
        """``lambda_patch * MSE(H_pat(s_masked), t_patch)`` at the masked
        patches (lines 104-112, 133-149, 160, 165)."""
        return self.patch_weight * F.mse_loss(
            self.patch_head(s_masked[mask]), t_patch[mask])

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """Proteus on the global view of ``inputs = [global, *locals,
        multi]``."""
        img = inputs[0]
        s_cls, s_patch, grid = self.student_tokens(img)
        t = self.teacher(img, grid, with_shape_mask=False, with_relation=False)
        losses = dict(
            loss_token=self.token_loss(s_cls, t.cls_token),
            loss_feature=self.feature_loss(s_cls, s_patch, t.cls_token,
                                           t.patch_tokens))
        num = int(img.shape[0] * self.mask_probability)
        # none masked: a batch of 1 image at mask_probability < 1, or fewer
        # than 1 / mask_ratio patches (their code would give NaN)
        if num > 0 and int(s_patch.shape[1] * self.mask_ratio) > 0:
            mask = random_patch_masks(num, s_patch.shape[1], self.mask_ratio,
                                      img.device)
            s_masked = self.masked_student_patches(img[:num], mask)
            losses['loss_patch'] = self.patch_loss(s_masked,
                                                   t.patch_tokens[:num], mask)
        return losses
