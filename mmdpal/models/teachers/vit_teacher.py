"""The frozen teacher of DPAL (t-VisEn, Sec. 3.1)."""
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmdpal.registry import MODELS
from mmdpal.utils import load_third_party_checkpoint
from mmdpal.utils.options import check_choice
from ..losses.relation_align import token_relation
from ..utils.state_dict import check_state_dict_fits
from ..utils.vit_tokens import (block_outputs, block_qkv, embed_tokens,
                                pos_embed_dino_scale_factor, pos_embed_grid)
from .shape_masks import SHAPE_MASKS, TOKEN_SHAPE_MASKS, min_max_scale


class TeacherTargets(NamedTuple):
    """What the teacher gives for one batch of views, on the student's grid.

    Attributes:
        cls_token (Tensor | None): F_t^g, (B, C_t); None when not asked for.
        patch_tokens (Tensor | None): F_t^l, (B, L, C_t), L = h * w of the
            student; None when not asked for.
        shape_mask (Tensor | None): M_shape of Eq. 2, (B, L) in [0, 1];
            None when not asked for.
        relation (Tensor | None): F_t^r of Eq. 6, (B, L, L) (or
            (B, 1 + L, 1 + L) with the class token), rows sum to 1; None when
            not asked for.
    """
    cls_token: Optional[torch.Tensor]
    patch_tokens: Optional[torch.Tensor]
    shape_mask: Optional[torch.Tensor]
    relation: Optional[torch.Tensor]


def resize_token_map(tokens: torch.Tensor, src: Tuple[int, int],
                     dst: Tuple[int, int]) -> torch.Tensor:
    """Resize (B, L_src, C) tokens laid on grid ``src`` to grid ``dst``."""
    if tuple(src) == tuple(dst):
        return tokens
    B, _, C = tokens.shape
    x = tokens.transpose(1, 2).reshape(B, C, *src)
    x = F.interpolate(x, size=dst, mode='bilinear', align_corners=False)
    return x.flatten(2).transpose(1, 2)


def resize_relation(relation: torch.Tensor, src: Tuple[int, int],
                    dst: Tuple[int, int]) -> torch.Tensor:
    """Resize a (B, L_src, L_src) row-stochastic map to (B, L_dst, L_dst)."""
    if tuple(src) == tuple(dst):
        return relation
    x = resize_token_map(relation, src, dst)  # resize the key axis
    x = resize_token_map(x.transpose(1, 2), src, dst).transpose(1, 2)
    x = x.clamp_min(0)
    return x / x.sum(dim=-1, keepdim=True).clamp_min(1e-12)


# ---------------------------------------------------------------- options
# Each option of the teacher names one of these functions; ``__init__``
# picks them once.


def _attention_relation(tokens: torch.Tensor, attn_mean: torch.Tensor,
                        with_cls_token: bool) -> torch.Tensor:
    """Paper F_t^r: the last block's head-mean attention, rows renormalised
    over the tokens kept."""
    rel = attn_mean if with_cls_token else attn_mean[:, 1:, 1:]
    return rel / rel.sum(dim=-1, keepdim=True)


def _similarity_relation(tokens: torch.Tensor, attn_mean: torch.Tensor,
                         with_cls_token: bool) -> torch.Tensor:
    """The authors' F_t^r: Eq. 3 on the teacher's tokens."""
    return token_relation(tokens if with_cls_token else tokens[:, 1:]).exp()


RELATIONS = dict(
    attention=_attention_relation, similarity=_similarity_relation)
TOKEN_RELATIONS = ('similarity', )  # read the final tokens


def _resize_input_size(img_size: Tuple[int, int], student_grid: Tuple[int,
                                                                      int],
                       patch: int) -> Tuple[int, int]:
    """The view is resized so that the teacher's grid is the student's."""
    return student_grid[0] * patch, student_grid[1] * patch


def _own_size(img_size: Tuple[int, int], student_grid: Tuple[int, int],
              patch: int) -> Tuple[int, int]:
    """The view at its own size, rounded down to the teacher's patch."""
    return img_size[0] // patch * patch, img_size[1] // patch * patch


ALIGNS = dict(resize_input=_resize_input_size, interpolate_tokens=_own_size)

POS_EMBED_RESIZES = dict(
    size=pos_embed_grid, dino_scale_factor=pos_embed_dino_scale_factor)


@MODELS.register_module()
class ViTTeacher(BaseModule):
    """A frozen ViT teacher (t-VisEn, Sec. 3.1) that gives class token and
    patch tokens, and two targets derived from them and from its last
    block's attention: M_shape (Eq. 2) and the relation target F_t^r
    (Eq. 6). Each option picks its function once, in ``__init__``.

    The teacher is an mmpretrain ``VisionTransformer`` (PATH / MAE / timm /
    DINOv2 checkpoints are converted to its names by
    ``tools/model_converters/``). Its checkpoint is loaded **strictly** when
    the teacher is built: a missing file or any missing / unexpected key is an
    error listing them. It is frozen (``requires_grad=False``), stays in eval
    mode whatever ``train()`` is called with, and runs under ``no_grad``. All
    blocks but the last run torch's fused attention; the last one is computed
    explicitly to expose its attention map (and stops there when no asked-for
    output reads the final tokens, ``with_tokens=False``).

    Args:
        backbone (dict): Config of the ViT, e.g. ``dict(type=
            'mmpretrain.VisionTransformer', arch='b', patch_size=16, ...)``.
            ``out_type`` is forced to ``'raw'`` and ``final_norm`` must be on.
        checkpoint (str): Converted teacher state dict (keys of ``backbone``).
        align (str): How the teacher's token grid is brought to the
            student's. ``'resize_input'`` (default): the view is resized to
            ``student_grid * teacher_patch`` before the teacher, so both grids
            are equal (e.g. 256x128 -> 224x112 for a patch-14 teacher).
            ``'interpolate_tokens'``: the teacher sees the view at its own
            size (rounded down to a multiple of its patch) and its patch
            tokens, mask and relation are bilinearly resized to the student's
            grid.
        shape_mask (str): M_shape of Eq. 2. ``'attention'`` (paper, default):
            the last block's class-token attention over the patches, averaged
            over heads, min-max scaled per image. ``'pca'`` (authors' code):
            the first PCA component of each image's patch tokens, its sign
            aligned with the class-token attention, see
            :func:`pca_shape_mask`. ``'pca_batch'`` (authors' code, as it
            computes it): one PCA over the patch tokens of the whole batch,
            min-max over the batch, scikit-learn's sign, see
            :func:`pca_batch_shape_mask`. ``'none'`` (not DPAL): every patch
            weighs 1, Eq. 5 becomes a plain MSE of all patch tokens (the
            demo's token-regression baseline).
        relation (str): F_t^r of Eq. 6. ``'attention'`` (paper, default): the
            last block's token-to-token attention averaged over heads, rows
            renormalised. ``'similarity'`` (authors' code): Eq. 3,
            softmax(F_t F_t^T / sqrt(C_t)), of the teacher's tokens.
        pos_embed_resize (str): How the position embedding is resized to the
            view's grid. ``'size'`` (default): mmpretrain's resize to the
            grid's size. ``'dino_scale_factor'`` (authors' code): DINO's
            bicubic resize by ``scale_factor=(grid + 0.1) / grid_0``.
        init_cfg (dict, optional): Unused; the checkpoint is the init.
    """

    def __init__(self,
                 backbone: dict,
                 checkpoint: str,
                 align: str = 'resize_input',
                 shape_mask: str = 'attention',
                 relation: str = 'attention',
                 pos_embed_resize: str = 'size',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        check_choice('align', align, tuple(ALIGNS))
        check_choice('shape_mask', shape_mask, tuple(SHAPE_MASKS))
        check_choice('relation', relation, tuple(RELATIONS))
        check_choice('pos_embed_resize', pos_embed_resize,
                     tuple(POS_EMBED_RESIZES))
        backbone = dict(backbone, out_type='raw')
        self.vit = MODELS.build(backbone)
        if not getattr(self.vit, 'final_norm', True) or \
                getattr(self.vit, 'cls_token', None) is None:
            raise ValueError('the teacher ViT needs a class token and '
                             'final_norm=True')
        self.patch_size = self.vit.patch_embed.projection.kernel_size[0]
        self.align = align
        self._view_size = ALIGNS[align]
        self._shape_mask = SHAPE_MASKS[shape_mask]
        self._relation = RELATIONS[relation]
        # the targets computed from the final tokens, not only the attention
        self._mask_reads_tokens = shape_mask in TOKEN_SHAPE_MASKS
        self._relation_reads_tokens = relation in TOKEN_RELATIONS
        self._pos_embed = POS_EMBED_RESIZES[pos_embed_resize]
        self.checkpoint = checkpoint
        self.load_checkpoint(checkpoint)
        self.requires_grad_(False)
        self.train(False)

    # ------------------------------------------------------------ weights
    def load_checkpoint(self, path: str) -> None:
        """Load the converted teacher weights strictly (tensors only)."""
        state = load_third_party_checkpoint(path, what='teacher')
        if isinstance(state, dict) and 'state_dict' in state:
            state = state['state_dict']
        check_state_dict_fits(
            state,
            self.vit.state_dict(),
            what=(f'teacher checkpoint {path!r} does not fit the teacher '
                  f'backbone {type(self.vit).__name__}'),
            hint=('Convert the released weights with tools/model_converters/'
                  'path_to_mmdpal.py (or dinov2_onnx_to_mmdpal.py) and check '
                  'that the teacher arch in the config matches the '
                  'checkpoint.'))
        self.vit.load_state_dict(state, strict=True)

    def init_weights(self) -> None:
        """The teacher's weights are its checkpoint, loaded in ``__init__``;
        re-initialising (as mmpretrain's ViT would do to ``pos_embed``) must
        not happen."""

    def train(self, mode: bool = True) -> 'ViTTeacher':
        """The teacher always stays in eval mode."""
        return super().train(False)

    # ------------------------------------------------------------ forward
    def tokens_and_attention(self,
                             img: torch.Tensor,
                             with_tokens: bool = True):
        """Run the ViT; return final-normed tokens (B, 1 + L, C), the last
        block's attention (B, heads, 1 + L, 1 + L) and the grid (h, w).

        ``with_tokens=False`` stops at the last block's attention map (its
        projection, FFN and the final norm are skipped) and returns None
        for the tokens."""
        vit = self.vit
        x, grid = embed_tokens(vit, img, self._pos_embed)
        for layer in vit.layers[:-1]:
            x = layer(x)  # fused scaled_dot_product_attention
        x, attn = self._last_block(vit.layers[-1], x, with_tokens)
        return (vit.ln1(x) if with_tokens else None), attn, grid

    @staticmethod
    def _last_block(layer, x: torch.Tensor, with_output: bool = True):
        """mmpretrain ``TransformerEncoderLayer.forward`` with the attention
        map computed explicitly: softmax(q k^T * scale). The block's output
        is None when ``with_output`` is False."""
        attn_mod = layer.attn
        B, N, _ = x.shape
        qkv = attn_mod.qkv(layer.ln1(x)).reshape(B, N, 3, attn_mod.num_heads,
                                                 attn_mod.head_dims).permute(
                                                     2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, heads, N, head_dims)
        scale = attn_mod.head_dims**-0.5  # what mmpretrain's attention uses
        attn = (q @ k.transpose(-2, -1) * scale).softmax(dim=-1)
        if not with_output:
            return None, attn
        y = (attn @ v).transpose(1, 2).reshape(B, N, attn_mod.embed_dims)
        y = attn_mod.out_drop(
            attn_mod.gamma1(attn_mod.proj_drop(attn_mod.proj(y))))
        x = x + y
        x = layer.ffn(layer.ln2(x), identity=x)
        return x, attn

    def fit_view(self, img: torch.Tensor,
                 student_grid: Tuple[int, int]) -> torch.Tensor:
        """The view at the size the teacher sees it (``align``)."""
        size = self._view_size(img.shape[-2:], tuple(student_grid),
                               self.patch_size)
        if tuple(img.shape[-2:]) != tuple(size):
            img = F.interpolate(
                img, size=size, mode='bicubic', align_corners=False)
        return img

    def _embed_on_grid(self, img: torch.Tensor,
                       student_grid: Tuple[int, int]) -> torch.Tensor:
        """Embedded tokens of the view, whose grid must be the student's."""
        x, grid = embed_tokens(self.vit, self.fit_view(img, student_grid),
                               self._pos_embed)
        if tuple(grid) != tuple(student_grid):
            raise ValueError(
                f'the teacher grid {grid} is not the student grid '
                f"{tuple(student_grid)}: use align='resize_input'")
        return x

    @torch.no_grad()
    def block_tokens(self, img: torch.Tensor, student_grid: Tuple[int, int],
                     indices: Sequence[int]) -> List[torch.Tensor]:
        """The tokens after each block in ``indices`` (0-based; the last
        block's final-normed), on the student's grid (needs
        ``align='resize_input'``): a list of (B, 1 + L, C_t)."""
        return block_outputs(self.vit, self._embed_on_grid(img, student_grid),
                             indices)

    @torch.no_grad()
    def tokens_of_kept_patches(self, img: torch.Tensor,
                               student_grid: Tuple[int, int],
                               keep: torch.Tensor) -> torch.Tensor:
        """The final-normed tokens (B, 1 + K, C_t) when only the patches
        ``keep`` (B, K) (indices on the student's grid, which must be the
        teacher's) enter the blocks, with their position embeddings
        (MaskedKD's teacher input)."""
        x = self._embed_on_grid(img, student_grid)
        patches = x[:, 1:].gather(1, keep[...,
                                          None].expand(-1, -1, x.shape[-1]))
        x = torch.cat((x[:, :1], patches), dim=1)
        return block_outputs(self.vit, x, [len(self.vit.layers) - 1])[0]

    @torch.no_grad()
    def last_block_qkv(self, img: torch.Tensor,
                       student_grid: Tuple[int, int]) -> Tuple[torch.Tensor]:
        """Query, key and value of the last block, on the student's grid
        (needs ``align='resize_input'``): each (B, heads, 1 + L, C_t /
        heads)."""
        x = self._embed_on_grid(img, student_grid)
        for layer in self.vit.layers[:-1]:
            x = layer(x)
        return block_qkv(self.vit.layers[-1], x)

    @torch.no_grad()
    def forward(self,
                img: torch.Tensor,
                student_grid: Tuple[int, int],
                with_shape_mask: bool = True,
                with_relation: bool = True,
                relation_with_cls_token: bool = False,
                with_tokens: bool = True) -> TeacherTargets:
        """Targets for one batch of views.

        Args:
            img (Tensor): Normalised views (B, 3, H, W).
            student_grid (tuple): The student's token grid (h, w) of this view.
            with_shape_mask (bool): Compute M_shape. Defaults to True.
            with_relation (bool): Compute the relation target. Defaults to
                True.
            relation_with_cls_token (bool): The relation over the class token
                and the patches (1 + L tokens) instead of the patches only;
                needs the teacher's grid to be the student's
                (``align='resize_input'``). Defaults to False.
            with_tokens (bool): Return F_t^g and F_t^l. False (the
                multi-person view, whose loss reads only the relation) skips
                what the asked-for targets do not need: with the attention
                targets, the last block after its attention map. Defaults to
                True.

        Returns:
            TeacherTargets: cls (B, C_t), patches (B, L, C_t), M_shape (B, L),
            relation (B, L, L) (or (B, 1 + L, 1 + L)) with L = h * w.
        """
        dst = tuple(student_grid)
        img = self.fit_view(img, dst)
        need_tokens = with_tokens or (with_shape_mask
                                      and self._mask_reads_tokens) or (
                                          with_relation
                                          and self._relation_reads_tokens)
        tokens, attn, grid = self.tokens_and_attention(img, need_tokens)
        cls_token = patches = None
        if need_tokens:
            cls_token, patches = tokens[:, 0], tokens[:, 1:]
        attn_mean = attn.float().mean(dim=1)  # (B, 1 + L_t, 1 + L_t)

        shape_mask = relation = None
        if with_shape_mask:
            cls_attn = min_max_scale(attn_mean[:, 0, 1:])  # (B, L_t)
            shape_mask = self._shape_mask(patches, cls_attn)
            shape_mask = resize_token_map(shape_mask[..., None], grid,
                                          dst)[..., 0].clamp(0, 1)
        if with_relation:
            if relation_with_cls_token and grid != dst:
                raise ValueError(
                    f'the relation with the class token needs the teacher '
                    f'grid {grid} to be the student grid {dst}: use '
                    'align="resize_input"')
            relation = self._relation(tokens, attn_mean,
                                      relation_with_cls_token)
            if not relation_with_cls_token:
                relation = resize_relation(relation, grid, dst)
        if not with_tokens:
            return TeacherTargets(None, None, shape_mask, relation)
        patches = resize_token_map(patches, grid, dst)
        return TeacherTargets(cls_token, patches, shape_mask, relation)
