"""What every distillation pretraining method of mmdpal shares: the student
backbone, the frozen teacher, the student's tokens of a view, and checkpoints
without the teacher. A method (DPAL, or a rival of Table 1) is its objective
and projector on top of these parts."""
from typing import Optional, Tuple, Union

import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.models.selfsup.base import BaseSelfSupervisor

from mmdpal.registry import MODELS
from mmdpal.utils.options import check_choice, check_heads
from ..utils.vit_tokens import (POS_EMBED_RESIZES, embed_tokens,
                                pos_embed_sequence_1d)


def split_tokens(
    feats: torch.Tensor, patch_stride: Optional[Tuple[int, int]],
    img_size: Tuple[int, int]
) -> Tuple[torch.Tensor, torch.Tensor, Tuple[int, int]]:
    """The student's output as class token, patch tokens and grid.

    Args:
        feats (Tensor): (B, 1 + L, C) ViT tokens, class token first, or a
            (B, C, h, w) feature map (Swin; its mean stands for the class
            token).
        patch_stride (tuple, optional): The ViT's patch stride (None for a
            feature map).
        img_size (tuple): The view's (H, W).

    Returns:
        tuple: class token (B, C), patch tokens (B, L, C), grid (h, w).
    """
    if feats.dim() == 4:  # (B, C, h, w) feature map, e.g. Swin
        h, w = feats.shape[-2:]
        patches = feats.flatten(2).transpose(1, 2)
        return patches.mean(dim=1), patches, (h, w)
    (H, W), (sh, sw) = img_size, patch_stride
    if H % sh or W % sw:
        raise ValueError(
            f'view size {H}x{W} is not divisible by the student patch size '
            f'{sh}x{sw}: change the crop size of the view in the data '
            'pipeline')
    return feats[:, 0], feats[:, 1:], (H // sh, W // sw)


def vit_tokens_sequence_1d_pos(vit: VisionTransformer,
                               img: torch.Tensor) -> torch.Tensor:
    """mmpretrain ``VisionTransformer.forward`` (``out_type='raw'``, last
    layer) with the authors' 1-D position resize
    (``vit_tokens.resample_sequence_1d``) instead of the 2-D resize."""
    x, _ = embed_tokens(vit, img, pos_embed_sequence_1d)
    for layer in vit.layers:
        x = layer(x)
    return vit.ln1(x) if vit.final_norm else x


class BaseDistiller(BaseSelfSupervisor):
    """A student backbone distilled from a frozen teacher.

    Builds the student (``backbone``) and the teacher (e.g.
    :class:`ViTTeacher`: frozen, eval, ``no_grad``, its checkpoint loaded
    strictly); gives the student's class token, patch tokens and grid of a
    view (:meth:`student_tokens`); keeps the teacher out of checkpoints (it
    is re-read from its own file whenever the model is built). A subclass
    builds its projector and writes ``loss()``.

    Args:
        backbone (dict): The student, e.g. ``mmpretrain.VisionTransformer``
            with ``out_type='raw'`` (class token + patch tokens, final-normed)
            or a backbone giving a (B, C, h, w) map (Swin; its mean stands for
            the class token). The heads of each ViT layer (``layer_cfgs``)
            must divide the width.
        teacher (dict): The frozen teacher, e.g. :class:`ViTTeacher`.
        student_pos_embed_resize (str): How the student's position embedding
            is fitted to a view of another size: ``'grid'`` (default,
            mmpretrain's 2-D resize) or ``'sequence_1d'`` (the DPAL authors'
            quirk, ``vit_tokens.resample_sequence_1d``; ViT students only).
        compile_blocks (bool | dict): ``torch.compile`` every transformer
            block of the student and the teacher (the whole backbone for a
            student without ``layers``, e.g. Swin) in place, so checkpoints
            keep their keys; a dict is passed to ``torch.compile`` (e.g.
            ``dict(mode='max-autotune')``). Defaults to False. For GPUs: on
            a CPU, inductor's code made the teacher slower
            (docs/benchmark.md).
        data_preprocessor (dict, optional): Normalises each view (mmpretrain's
            ``SelfSupDataPreprocessor``; the model configs set its mean/std).
        init_cfg (dict, optional): Initialisation of the student/projector.
    """

    def __init__(self,
                 backbone: dict,
                 teacher: dict,
                 student_pos_embed_resize: str = 'grid',
                 compile_blocks: Union[bool, dict] = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        check_choice('student_pos_embed_resize', student_pos_embed_resize,
                     ('grid', 'sequence_1d'))
        super().__init__(
            backbone=backbone,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.teacher = MODELS.build(teacher)
        self.student_pos_embed_resize = student_pos_embed_resize
        self._check_student_blocks()
        self._compile_options = compile_blocks
        # Checkpoints hold the student and the projector only; the teacher is
        # re-read from its own file whenever the model is built.
        self._register_state_dict_hook(_drop_teacher_from_state_dict)
        self.register_load_state_dict_post_hook(_teacher_keys_not_missing)

    @property
    def student_is_vit(self) -> bool:
        return isinstance(self.backbone, VisionTransformer)

    def _check_student_blocks(self) -> None:
        """Build-time checks of the student's heads and position resize."""
        if self.student_is_vit:
            for i, layer in enumerate(self.backbone.layers):
                check_heads(f'backbone.layer_cfgs[{i}].num_heads',
                            layer.attn.embed_dims, layer.attn.num_heads)
        elif self.student_pos_embed_resize == 'sequence_1d':
            raise ValueError(
                "student_pos_embed_resize='sequence_1d' resizes a ViT's 1-D "
                f'position sequence; {type(self.backbone).__name__} has '
                "none: use one of ['grid']")

    def compile_blocks(self) -> None:
        """``torch.compile`` (``nn.Module.compile``: in place, same state
        dict keys) each block of the student and the teacher ViTs, as the
        ``compile_blocks`` option asks; a subclass calls it at the end of its
        ``__init__``."""
        options = self._compile_options
        if not options:
            return
        options = {} if options is True else dict(options)
        for vit in (self.backbone, self.teacher.vit):
            blocks = getattr(vit, 'layers', None)
            for module in (vit, ) if blocks is None else blocks:
                module.compile(**options)

    def require_vit_student(self, method: str) -> None:
        """One-line build error for a method that reads a ViT's blocks."""
        if not self.student_is_vit:
            raise ValueError(
                f'{method} reads the blocks of a ViT student; backbone.type='
                f'{type(self.backbone).__name__} has none: use '
                "'mmpretrain.VisionTransformer'")

    def require_widths(self, method: str, student_dims: int,
                       teacher_dims: int) -> None:
        """One-line build error when the projector's widths are not the
        student's and the teacher's."""
        for key, dims, model in (('student_dims', student_dims, self.backbone),
                                 ('teacher_dims', teacher_dims,
                                  self.teacher.vit)):
            width = getattr(model, 'embed_dims', None)
            if width != dims:
                raise ValueError(
                    f'{method}: {key}={dims} does not fit the '
                    f'{key.split("_")[0]} width {width}: set {key}={width}')

    def require_teacher_grid(self, method: str) -> None:
        """One-line build error unless the teacher's grid is the student's
        (``teacher.align='resize_input'``), as a method that compares
        tokens or relations position by position needs."""
        align = getattr(self.teacher, 'align', None)
        if align != 'resize_input':
            raise ValueError(
                f"{method} compares teacher and student token by token: "
                f"teacher.align={align!r} does not give the student's grid: "
                "use teacher.align='resize_input'")

    # ------------------------------------------------------------ student
    def student_tokens(
        self, img: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, Tuple[int, int]]:
        """Encode one batch of views with the student.

        Returns:
            tuple: class token (B, C_s), patch tokens (B, L, C_s) and the
            token grid (h, w).
        """
        if self.student_pos_embed_resize == 'sequence_1d':
            feats = vit_tokens_sequence_1d_pos(self.backbone, img)
        else:
            feats = self.backbone(img)[-1]
        stride = None if feats.dim() == 4 else \
            self.backbone.patch_embed.projection.stride
        return split_tokens(feats, stride, img.shape[-2:])

    def student_embed(
        self,
        img: torch.Tensor,
        mask: Optional[torch.Tensor] = None,
        mask_token: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """The ViT student's tokens before its blocks (B, 1 + L, C_s) and
        grid, with the student's position resize; patches where ``mask``
        (B, L) is True replaced by ``mask_token`` (``embed_tokens``)."""
        return embed_tokens(self.backbone, img,
                            POS_EMBED_RESIZES[self.student_pos_embed_resize],
                            mask, mask_token)

    def extract_feat(self, inputs: torch.Tensor):
        """The student's features (what is kept after pretraining)."""
        return self.backbone(inputs)


def _drop_teacher_from_state_dict(module, state_dict, prefix, local_metadata):
    for key in [k for k in state_dict if k.startswith(prefix + 'teacher.')]:
        del state_dict[key]


def _teacher_keys_not_missing(module, incompatible_keys):
    missing = incompatible_keys.missing_keys
    missing[:] = [
        k for k in missing
        if not k.startswith('teacher.') and '.teacher.' not in k
    ]
