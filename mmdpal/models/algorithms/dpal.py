"""DPAL: Dynamic Pattern Alignment Learning (the algorithm, Fig. 2)."""
from typing import Dict, List, Optional, Tuple

import torch
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.structures import DataSample

from mmdpal.registry import MODELS


@MODELS.register_module()
class DPALDistiller(BaseSelfSupervisor):
    """DPAL distillation pretraining of a lightweight ViT.

    `Dynamic Pattern Alignment Learning for Pretraining Lightweight
    Human-Centric Vision Models`.

    Each sample has four views: ``inputs = [global, local_1, ..., local_k,
    multi_person]`` (a single-person image I_1 as one global and k local
    views, and a copy-paste multi-person image I_2). The frozen teacher gives
    the targets; the student backbone encodes every view; the decoder (D-PaDe
    by default) decodes three patterns which are aligned to the teacher
    (Eq. 4-6); the total loss is the sum of the returned terms (Eq. 7, each
    loss carries its lambda as ``loss_weight``).

    Args:
        backbone (dict): The student, e.g. ``mmpretrain.VisionTransformer``
            with ``out_type='raw'`` (class token + patch tokens, final-normed)
            or a backbone giving a (B, C, h, w) map (Swin; its mean stands for
            the class token).
        teacher (dict): The frozen teacher, e.g. :class:`ViTTeacher`.
        decoder (dict): The pattern decoder (D-PaDe or a Table 11 variant).
        global_loss (dict, optional): Eq. 4; None leaves it out (Table 3).
        local_loss (dict, optional): Eq. 5; None leaves it out.
        relation_loss (dict, optional): Eq. 6; None leaves it out.
        data_preprocessor (dict, optional): Defaults to mmpretrain's
            ``SelfSupDataPreprocessor`` (normalises each view).
        init_cfg (dict, optional): Initialisation of the student/decoder.
    """

    def __init__(self,
                 backbone: dict,
                 teacher: dict,
                 decoder: dict,
                 global_loss: Optional[dict] = None,
                 local_loss: Optional[dict] = None,
                 relation_loss: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='SelfSupDataPreprocessor')
        super().__init__(
            backbone=backbone,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.teacher = MODELS.build(teacher)
        self.decoder = MODELS.build(decoder)
        self.global_loss = MODELS.build(global_loss) if global_loss else None
        self.local_loss = MODELS.build(local_loss) if local_loss else None
        self.relation_loss = MODELS.build(relation_loss) \
            if relation_loss else None
        if not (self.global_loss or self.local_loss or self.relation_loss):
            raise ValueError('DPALDistiller needs at least one of '
                             'global_loss, local_loss, relation_loss')
        # Checkpoints hold the student and the decoder only; the teacher is
        # re-read from its own file whenever the model is built.
        self._register_state_dict_hook(_drop_teacher_from_state_dict)
        self.register_load_state_dict_post_hook(_teacher_keys_not_missing)

    # ------------------------------------------------------------ student
    def student_tokens(
        self, img: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, Tuple[int, int]]:
        """Encode one batch of views with the student.

        Returns:
            tuple: class token F_s^g (B, C_s), patch tokens F_s^l (B, L, C_s)
            and the token grid (h, w).
        """
        feats = self.backbone(img)[-1]
        if feats.dim() == 4:  # (B, C, h, w) feature map, e.g. Swin
            h, w = feats.shape[-2:]
            patches = feats.flatten(2).transpose(1, 2)
            return patches.mean(dim=1), patches, (h, w)
        # (B, 1 + L, C) raw ViT tokens: class token first
        stride = self.backbone.patch_embed.projection.stride
        H, W = img.shape[-2:]
        if H % stride[0] or W % stride[1]:
            raise ValueError(
                f'view size {H}x{W} is not divisible by the student patch '
                f'size {stride[0]}x{stride[1]}: change the crop size of the '
                'view in the data pipeline')
        return feats[:, 0], feats[:, 1:], (H // stride[0], W // stride[1])

    def extract_feat(self, inputs: torch.Tensor):
        """The student's features (what is kept after pretraining)."""
        return self.backbone(inputs)

    # ------------------------------------------------------------ loss
    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """Eq. 1-7 for one batch: ``inputs = [global, *locals, multi]``."""
        global_view, *local_views, multi_view = inputs
        s_cls, s_patch, grid = self.student_tokens(global_view)
        t_single = self.teacher(  # F_t^g, F_t^l, M_shape
            global_view,
            grid,
            with_shape_mask=self.local_loss is not None,
            with_relation=False)

        losses, decoded = {}, {}
        if self.global_loss is not None:  # Eq. 1 + Eq. 4
            cls_tokens = [s_cls
                          ] + [self.student_tokens(v)[0] for v in local_views]
            outs = [self.decoder(c[:, None]) for c in cls_tokens]
            decoded['global'] = outs[0]
            losses['loss_global'] = self.global_loss(
                [o.tokens[:, 0] for o in outs], t_single.cls_token)
        if self.local_loss is not None:  # Eq. 2 + Eq. 5
            decoded['local'] = self.decoder(s_patch)
            losses['loss_local'] = self.local_loss(decoded['local'].tokens,
                                                   t_single.patch_tokens,
                                                   t_single.shape_mask)
        if self.relation_loss is not None:  # Eq. 3 + Eq. 6
            _, s_multi, multi_grid = self.student_tokens(multi_view)
            t_multi = self.teacher(
                multi_view, multi_grid, with_shape_mask=False)  # F_t^r
            decoded['relation'] = self.decoder(s_multi)
            losses['loss_relation'] = self.relation_loss(
                decoded['relation'].tokens, t_multi.relation)
        losses.update(self.decoder.loss(decoded))
        return losses


def _drop_teacher_from_state_dict(module, state_dict, prefix, local_metadata):
    for key in [k for k in state_dict if k.startswith(prefix + 'teacher.')]:
        del state_dict[key]


def _teacher_keys_not_missing(module, incompatible_keys):
    missing = incompatible_keys.missing_keys
    missing[:] = [
        k for k in missing
        if not k.startswith('teacher.') and '.teacher.' not in k
    ]
