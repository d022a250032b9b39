"""DPAL: Dynamic Pattern Alignment Learning (the algorithm, Fig. 2)."""
from typing import Dict, List, Optional, Union

import torch
from mmpretrain.structures import DataSample

from mmdpal.registry import MODELS
from mmdpal.utils.options import check_choice
from ..decoders.base import DecoderOutput
from .base import BaseDistiller, split_tokens, vit_tokens_sequence_1d_pos

__all__ = [
    'DPALDistiller', 'split_tokens', 'split_output',
    'vit_tokens_sequence_1d_pos'
]


def split_output(out: DecoderOutput, num: int) -> List[DecoderOutput]:
    """Split a decoder output of ``num`` stacked batches into ``num``."""
    return [
        DecoderOutput(*parts) for parts in zip(
            *[t.chunk(num) if t is not None else [None] * num for t in out])
    ]


@MODELS.register_module()
class DPALDistiller(BaseDistiller):
    """DPAL distillation pretraining of a lightweight ViT.

    `Dynamic Pattern Alignment Learning for Pretraining Lightweight
    Human-Centric Vision Models`.

    Each sample has four views: ``inputs = [global, local_1, ..., local_k,
    multi_person]`` (a single-person image I_1 as one global and k local
    views, and a copy-paste multi-person image I_2). The frozen teacher gives
    the targets; the student backbone encodes every view; the decoder (D-PaDe
    by default) decodes three patterns which are aligned to the teacher
    (Eq. 4-6); the total loss is the sum of the returned terms (Eq. 7, each
    loss carries its lambda as ``loss_weight``), plus the decoder's own
    auxiliary terms (``decoder.loss``) over all its calls of the step.

    Args:
        backbone (dict): The student, e.g. ``mmpretrain.VisionTransformer``
            with ``out_type='raw'`` (class token + patch tokens, final-normed)
            or a backbone giving a (B, C, h, w) map (Swin; its mean stands for
            the class token). The heads of each ViT layer (``layer_cfgs``)
            must divide the width.
        teacher (dict): The frozen teacher, e.g. :class:`ViTTeacher`.
        decoder (dict): The pattern decoder (D-PaDe or a Table 11 variant).
        global_loss (dict, optional): Eq. 4; None leaves it out (Table 3).
        local_loss (dict, optional): Eq. 5; None leaves it out.
        relation_loss (dict, optional): Eq. 6; None leaves it out.
        relation_tokens (str): The tokens of the multi-person image that
            Eq. 6 relates: ``'patches'`` (default, L patch tokens) or
            ``'all'`` (the authors': class token and patches, 1 + L, for
            teacher and decoded student; needs a ViT student and the teacher's
            ``align='resize_input'``).
        student_pos_embed_resize, compile_blocks, data_preprocessor,
            init_cfg: :class:`BaseDistiller`'s (the authors' 1-D position
            resize, ``torch.compile`` of the blocks, the views'
            normalisation, the student's and the decoder's initialisation).
    """

    def __init__(self,
                 backbone: dict,
                 teacher: dict,
                 decoder: dict,
                 global_loss: Optional[dict] = None,
                 local_loss: Optional[dict] = None,
                 relation_loss: Optional[dict] = None,
                 relation_tokens: str = 'patches',
                 student_pos_embed_resize: str = 'grid',
                 compile_blocks: Union[bool, dict] = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        check_choice('relation_tokens', relation_tokens, ('patches', 'all'))
        super().__init__(
            backbone=backbone,
            teacher=teacher,
            student_pos_embed_resize=student_pos_embed_resize,
            compile_blocks=compile_blocks,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.decoder = MODELS.build(decoder)
        self.global_loss = MODELS.build(global_loss) if global_loss else None
        self.local_loss = MODELS.build(local_loss) if local_loss else None
        self.relation_loss = MODELS.build(relation_loss) \
            if relation_loss else None
        if not (self.global_loss or self.local_loss or self.relation_loss):
            raise ValueError('DPALDistiller needs at least one of '
                             'global_loss, local_loss, relation_loss')
        self._check_relation_tokens(relation_tokens)
        self.relation_tokens = relation_tokens
        self.compile_blocks()

    def _check_relation_tokens(self, relation_tokens: str) -> None:
        """Build-time check of ``relation_tokens`` against the student and
        the teacher."""
        if relation_tokens == 'all':
            if not self.student_is_vit or self.backbone.cls_token is None:
                raise ValueError(
                    "relation_tokens='all' needs a student with a class "
                    f'token (a ViT); {type(self.backbone).__name__} has none: '
                    "use one of ['patches']")
            if getattr(self.teacher, 'align', None) != 'resize_input':
                raise ValueError("relation_tokens='all' needs the teacher's "
                                 "align='resize_input' (same grids): use "
                                 "relation_tokens='patches' or that align")

    # ------------------------------------------------------------ student
    def local_class_tokens(self,
                           views: List[torch.Tensor]) -> List[torch.Tensor]:
        """The student class token of each local view; views of one size
        are encoded in one batch."""
        if len({tuple(v.shape[1:]) for v in views}) == 1:
            return list(
                self.student_tokens(torch.cat(views))[0].chunk(len(views)))
        return [self.student_tokens(v)[0] for v in views]

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

        # (pattern, output) of every decoder call, for decoder.loss()
        losses, decoded = {}, []
        if self.global_loss is not None:  # Eq. 1 + Eq. 4
            cls_tokens = [s_cls] + self.local_class_tokens(local_views)
            # one decoder call for the class tokens of all M views: the
            # decoder works per image, so this is M calls in one
            outs = split_output(
                self.decoder(torch.cat(cls_tokens)[:, None]), len(cls_tokens))
            decoded += [('global', o) for o in outs]
            losses['loss_global'] = self.global_loss(
                [o.tokens[:, 0] for o in outs], t_single.cls_token)
        if self.local_loss is not None:  # Eq. 2 + Eq. 5
            out = self.decoder(s_patch)
            decoded.append(('local', out))
            losses['loss_local'] = self.local_loss(out.tokens,
                                                   t_single.patch_tokens,
                                                   t_single.shape_mask)
        if self.relation_loss is not None:  # Eq. 3 + Eq. 6
            with_cls = self.relation_tokens == 'all'
            m_cls, s_multi, multi_grid = self.student_tokens(multi_view)
            if with_cls:
                s_multi = torch.cat((m_cls[:, None], s_multi), dim=1)
            t_multi = self.teacher(  # F_t^r only
                multi_view,
                multi_grid,
                with_shape_mask=False,
                relation_with_cls_token=with_cls,
                with_tokens=False)
            out = self.decoder(s_multi)
            decoded.append(('relation', out))
            losses['loss_relation'] = self.relation_loss(
                out.tokens, t_multi.relation)
        losses.update(self.decoder.loss(decoded))
        return losses
