"""SAIP: Scale-Aware Image Pretraining (the algorithm, Fig. 3)."""
import random
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models import VisionTransformer
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.structures import DataSample

from mmdpal.registry import MODELS
from mmdpal.utils.options import check_choice, check_heads
from ..utils.vit_tokens import POS_EMBED_RESIZES
from .ema import StudentCosineEMA


def patchify(img: torch.Tensor, p: int) -> torch.Tensor:
    """(B, 3, h * p, w * p) -> (B, h * w, p * p * 3), pixels (p, q, c) per
    patch (MAE's order)."""
    B, C, H, W = img.shape
    x = img.reshape(B, C, H // p, p, W // p, p)
    return torch.einsum('nchpwq->nhwpqc', x).reshape(B, -1, p * p * C)


def anchor_mask(
        noise: torch.Tensor, anchor_grid: Tuple[int, int], grid: Tuple[int,
                                                                       int],
        mask_ratio: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CSR's mask, drawn on the anchor's grid and resized to the view's.

    ``(1 - mask_ratio)`` of the anchor's patches are kept (lowest
    ``noise``), the keep-map is resized (nearest) to ``grid``, and the
    view's ``int(L * (1 - mask_ratio))`` tokens sorted first by
    ``argsort(1 - keep)`` are the ones the encoder sees; the loss scores the
    patches outside the resized keep-map (the authors' ``get_mask`` /
    ``random_masking_with_ref_anchor``).

    Args:
        noise (Tensor): (B, L_0) uniform noise, L_0 = anchor patches.

    Returns:
        tuple: kept ids (B, K), ids_restore (B, L), removed (B, L) 0/1.
    """
    B, L0 = noise.shape
    ids_restore = noise.argsort(dim=1).argsort(dim=1)
    keep = torch.zeros(B, L0, device=noise.device)
    keep[:, :int(L0 * (1 - mask_ratio))] = 1.
    keep = torch.gather(keep, 1, ids_restore)  # (B, L_0) 1 = kept
    keep = F.interpolate(keep.view(B, 1, *anchor_grid), grid).flatten(1)
    ids_shuffle = torch.argsort(1 - keep, dim=1)
    L = keep.shape[1]
    return (ids_shuffle[:, :int(L * (1 - mask_ratio))],
            ids_shuffle.argsort(dim=1), 1 - keep)


@MODELS.register_module()
class SAIP(BaseSelfSupervisor):
    """SAIP self-supervised pretraining of a lightweight ViT.

    `Scale-Aware Pre-Training for Human-Centric Visual Perception: Enabling
    Lightweight and Generalizable Models`. Each sample has
    ``inputs = [global_1, global_2, local_1, ..., local_n, multi_person]``
    (``global_1`` is the anchor I_0) and, in its data sample,
    ``paste_masks`` (2, H, W): the boxes where ``local_n`` and the anchor
    (shrunk to the local size, the "region") were pasted into the
    multi-person image (``CopyPasteMultiPerson(box_masks=True)``).

    One step (the authors' ``csl_vit_tiny_patch16``):

    - CSM (Eq. 1): the class tokens of the 2 global views, the first n - 1
      local views, ``local_n`` and the region, the last two resized by a
      random factor from ``csm_scales``, go through the CSM head; the
      momentum teacher's head output of the 2 global views is the target
      (:class:`CSMLoss`).
    - CSR (Eq. 2): ``global_2`` resized by ``csr_scale`` is masked on the
      anchor's grid (:func:`anchor_mask`) and encoded up to block
      ``mid_layer``; the decoder reconstructs it from its visible tokens,
      conditioned on the anchor's block-``mid_layer`` tokens (normed by
      ``mid_norm``; their patches or only their class token, the decoder's
      ``anchor_tokens``).
    - CSS (Eq. 3): the teacher's block-``mid_layer`` patch tokens of the
      multi-person image are searched for the anchor and for the resized
      ``local_n`` (their block-``mid_layer`` tokens).

    Args:
        backbone (dict): mmpretrain ``VisionTransformer`` with a class token
            and ``out_type='raw'``; ``img_size`` is the anchor's.
        csm_head (dict): :class:`CSMHead`.
        csr_decoder (dict): :class:`CSRDecoder`.
        css_decoder (dict): :class:`CSSDecoder`.
        csm_loss (dict): :class:`CSMLoss`.
        csr_loss (dict): :class:`CSRLoss`.
        css_loss (dict): :class:`CSSLoss`.
        attention_loss (dict, optional): :class:`AttentionKLLoss` (the
            authors' code only). Defaults to None (the paper: no such term).
        mid_layer (int): The block whose (normed) tokens CSR and CSS use.
            Defaults to 6.
        mask_ratio (float): CSR's mask ratio. Defaults to 0.75.
        csr_scale (float): Resize factor of CSR's view. Defaults to 1.25.
        csm_scales (sequence): Resize factors drawn for ``local_n`` and the
            region. Defaults to (0.75, 0.875, 1.125, 1.25).
        pos_embed_resize (str): How the stored position embedding reaches
            another grid: ``'grid'`` (default, mmpretrain's 2-D resize) or
            ``'sequence_1d'`` (the authors': one flat 1-D sequence).
        teacher_momentum (float): Start of the teacher's EMA weight on the
            student (cosine to 0 over training, DINO's 0.996 -> 1). The
            teacher is updated at the start of every ``loss()`` (so also on
            the accumulation steps, as theirs), the first time a copy of
            the student. Defaults to 0.004.
        teacher_momentum_index (str): The point of the cosine a step takes:
            ``'iter'`` (default, the iteration of the run) or
            ``'iter_in_epoch'`` (the authors' ``momentum_schedule[
            data_iter_step]``: the momentum stays near 0.996), see
            :class:`StudentCosineEMA`.
        data_preprocessor (dict, optional): Normalises each view.
        init_cfg (dict, optional): Initialisation.
    """

    def __init__(self,
                 backbone: dict,
                 csm_head: dict,
                 csr_decoder: dict,
                 css_decoder: dict,
                 csm_loss: dict,
                 csr_loss: dict,
                 css_loss: dict,
                 attention_loss: Optional[dict] = None,
                 mid_layer: int = 6,
                 mask_ratio: float = 0.75,
                 csr_scale: float = 1.25,
                 csm_scales: Sequence[float] = (0.75, 0.875, 1.125, 1.25),
                 pos_embed_resize: str = 'grid',
                 teacher_momentum: float = 0.004,
                 teacher_momentum_index: str = 'iter',
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        check_choice('SAIP.pos_embed_resize', pos_embed_resize,
                     list(POS_EMBED_RESIZES))
        check_choice('SAIP.teacher_momentum_index', teacher_momentum_index,
                     ('iter', 'iter_in_epoch'))
        super().__init__(
            backbone=backbone,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        vit = self.backbone
        if not isinstance(vit, VisionTransformer) or vit.cls_token is None:
            raise ValueError(
                'SAIP.backbone must be an mmpretrain VisionTransformer with a '
                f'class token (with_cls_token=True), got {type(vit).__name__}')
        if not 0 <= mid_layer < len(vit.layers):
            raise ValueError(f'SAIP.mid_layer={mid_layer}: use a block index '
                             f'in [0, {len(vit.layers) - 1}]')
        if not 0 < mask_ratio < 1:
            raise ValueError(
                f'SAIP.mask_ratio={mask_ratio}: use a value in (0, 1)')
        for i, layer in enumerate(vit.layers):
            check_heads(f'SAIP.backbone.layer_cfgs[{i}].num_heads',
                        layer.attn.embed_dims, layer.attn.num_heads)
        self.mid_layer = mid_layer
        self.mask_ratio = mask_ratio
        self.csr_scale = csr_scale
        self.csm_scales = tuple(csm_scales)
        self.pos_embed_resize = pos_embed_resize
        self.mid_norm = nn.LayerNorm(vit.embed_dims, eps=1e-6)
        self.csm_head = MODELS.build(csm_head)
        self.csr_decoder = MODELS.build(csr_decoder)
        self.css_decoder = MODELS.build(css_decoder)
        self.csm_loss = MODELS.build(csm_loss)
        self.csr_loss = MODELS.build(csr_loss)
        self.css_loss = MODELS.build(css_loss)
        self.attention_loss = MODELS.build(attention_loss) \
            if attention_loss else None
        # the expert encoder: a momentum copy of what it uses
        self.teacher = StudentCosineEMA(
            self._teachable(),
            momentum=teacher_momentum,
            momentum_index=teacher_momentum_index)

    def _teachable(self) -> nn.ModuleDict:
        return nn.ModuleDict(
            dict(
                backbone=self.backbone,
                mid_norm=self.mid_norm,
                csm_head=self.csm_head))

    # ------------------------------------------------------------ encoder
    def encode(self,
               img: torch.Tensor,
               parts: Optional[nn.ModuleDict] = None,
               keep: Optional[torch.Tensor] = None,
               mid_only: bool = False,
               with_attention: bool = False) -> dict:
        """Encode a batch with the student (``parts=None``) or the teacher.

        Args:
            img (Tensor): (B, 3, H, W).
            keep (Tensor, optional): (B, K) ids of the patches to keep.
            mid_only (bool): Stop after block ``mid_layer``.
            with_attention (bool): Also return the last block's maps.

        Returns:
            dict: ``mid`` (B, 1 + L, C) block-``mid_layer`` tokens normed by
            ``mid_norm``; unless ``mid_only``, ``last`` (B, 1 + L, C)
            final-normed tokens and, with ``with_attention``, ``attn``:
            ``[qk, vv]`` of the last block, each (B, heads, N, N).
        """
        parts = parts if parts is not None else self._teachable()
        vit = parts['backbone']
        x, grid = vit.patch_embed(img)  # (B, L, C)
        pos = POS_EMBED_RESIZES[self.pos_embed_resize](vit, tuple(grid))
        x = x + pos[:, 1:]
        if keep is not None:
            x = torch.gather(x, 1, keep[..., None].expand(-1, -1, x.shape[2]))
        cls = (vit.cls_token + pos[:, :1]).expand(x.shape[0], -1, -1)
        x = vit.pre_norm(vit.drop_after_pos(torch.cat((cls, x), dim=1)))
        out = dict(grid=tuple(grid))
        last = len(vit.layers) - 1
        for i, layer in enumerate(vit.layers):
            if i == last and with_attention:
                out['attn'] = self.attention_maps(layer, x)
            x = layer(x)
            if i == self.mid_layer:
                out['mid'] = parts['mid_norm'](x)
                if mid_only:
                    return out
        out['last'] = vit.ln1(x) if vit.final_norm else x
        return out

    @staticmethod
    def attention_maps(layer: nn.Module,
                       x: torch.Tensor) -> List[torch.Tensor]:
        """The block's query-key attention ``softmax(q k^T * s)`` and the
        value-value map ``softmax(v v^T * s)`` (the authors' ``Attention``
        returns both), each (B, heads, N, N)."""
        attn = layer.attn
        B, N, _ = x.shape
        qkv = attn.qkv(layer.ln1(x)).reshape(B, N, 3, attn.num_heads,
                                             attn.head_dims).permute(
                                                 2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        return [
            ((q @ k.transpose(-2, -1)) * attn.head_dims**-0.5).softmax(dim=-1),
            ((v @ v.transpose(-2, -1)) * attn.head_dims**-0.5).softmax(dim=-1)
        ]

    def extract_feat(self, inputs: torch.Tensor):
        """The student's features (what is kept after pretraining)."""
        return self.backbone(inputs)

    # ------------------------------------------------------------ checks
    def _check_inputs(self, inputs: List[torch.Tensor],
                      data_samples: List[DataSample]) -> torch.Tensor:
        if len(inputs) < 4:
            raise ValueError(
                f'SAIP needs inputs [global_1, global_2, local_1, ..., '
                f'multi_person] (at least 4 views), got {len(inputs)}: set '
                'the MultiView num_views of the data pipeline')
        g1, g2, *locals_, multi = inputs
        if g1.shape[-2:] != g2.shape[-2:]:
            raise ValueError(f'SAIP: the global views differ in size '
                             f'({tuple(g1.shape[-2:])} vs '
                             f'{tuple(g2.shape[-2:])}): give both the same '
                             'ViewAugment size')
        if len({tuple(v.shape[-2:]) for v in locals_}) != 1:
            raise ValueError('SAIP: the local views differ in size: give '
                             'them one ViewAugment size')
        if any(not hasattr(ds, 'paste_masks') for ds in data_samples):
            raise ValueError('SAIP needs data_samples[i].paste_masks: use '
                             'CopyPasteMultiPerson(box_masks=True) and '
                             "PackInputs(algorithm_keys=['paste_masks'])")
        masks = torch.stack([
            torch.as_tensor(ds.paste_masks) for ds in data_samples
        ]).to(multi)  # (B, 2, H, W), 0/1
        if masks.shape[1] != 2 or masks.shape[-2:] != multi.shape[-2:]:
            raise ValueError(
                f'SAIP: paste_masks {tuple(masks.shape[1:])} do not fit the '
                f'multi-person view {tuple(multi.shape[-2:])}: expected (2, '
                'H, W) from CopyPasteMultiPerson(box_masks=True)')
        return masks

    # ------------------------------------------------------------ loss
    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """Eq. 1-3 for one batch (the total is their sum)."""
        masks = self._check_inputs(inputs, data_samples)
        g1, g2, *locals_, multi = inputs
        self.teacher.update_parameters(self._teachable())
        with_attn = self.attention_loss is not None
        # the student on both global views, the anchor first
        s_glob = self.encode(torch.cat((g1, g2)), with_attention=with_attn)
        # the region: the anchor shrunk to the local size (nearest)
        region = F.interpolate(g1, size=locals_[-1].shape[-2:])
        # local_n and the region at a random scale each
        s_rescaled = [
            self.encode(
                F.interpolate(v, scale_factor=random.choice(self.csm_scales)))
            for v in (locals_[-1], region)
        ]
        with torch.no_grad():
            t_glob = self.encode(
                torch.cat((g1, g2)),
                self.teacher.module,
                with_attention=with_attn)
            t_multi = self.encode(multi, self.teacher.module, mid_only=True)

        losses = self.cross_scale_matching(s_glob, locals_[:-1], s_rescaled,
                                           t_glob)
        losses['loss_csr'] = self.cross_scale_reconstruction(
            s_glob['mid'][:g1.shape[0]], g2)
        losses.update(
            self.cross_scale_search(s_glob['mid'][:g1.shape[0]],
                                    s_rescaled[0]['mid'], t_multi, masks))
        return losses

    def cross_scale_matching(self, s_glob: dict, locals_: List[torch.Tensor],
                             s_rescaled: List[dict],
                             t_glob: dict) -> Dict[str, torch.Tensor]:
        """Eq. 1 (and the authors' attention term): the CSM head's outputs
        of the student's class tokens of every view (2 global, the locals
        but the last, the rescaled last local and region) against the
        teacher's of the 2 global views."""
        B = s_glob['last'].shape[0] // 2
        s_tokens = [s_glob['last'][:, 0]]  # class tokens, (2B, C)
        if locals_:  # encoded in one batch
            s_tokens.append(self.encode(torch.cat(locals_))['last'][:, 0])
        s_tokens += [s['last'][:, 0] for s in s_rescaled]
        s_out = self.csm_head(torch.cat(s_tokens))  # (V * B, K)
        with torch.no_grad():
            t_out = self.teacher.module['csm_head'](
                t_glob['last'][:, 0])  # (2B, K)
        losses = dict(
            loss_csm=self.csm_loss(list(s_out.split(B)), list(t_out.chunk(2))))
        if self.attention_loss is not None:  # per view: [qk, vv]
            losses['loss_attn'] = self.attention_loss(
                [list(m) for m in zip(*[a.chunk(2) for a in s_glob['attn']])],
                [list(m) for m in zip(*[a.chunk(2) for a in t_glob['attn']])])
        return losses

    def cross_scale_reconstruction(self, anchor: torch.Tensor,
                                   img: torch.Tensor) -> torch.Tensor:
        """Eq. 2: ``img`` resized by ``csr_scale``, masked on the anchor's
        grid (:func:`anchor_mask`), encoded up to block ``mid_layer`` and
        reconstructed by the decoder from its visible tokens and the
        anchor's (B, 1 + L_0, C) tokens."""
        view = F.interpolate(img, scale_factor=self.csr_scale)
        anchor_grid = tuple(self.backbone.patch_resolution)
        p = self.backbone.patch_embed.projection.stride[0]
        grid = (view.shape[2] // p, view.shape[3] // p)
        noise = torch.rand(
            view.shape[0], anchor_grid[0] * anchor_grid[1], device=view.device)
        keep, ids_restore, removed = anchor_mask(noise, anchor_grid, grid,
                                                 self.mask_ratio)
        visible = self.encode(view, keep=keep, mid_only=True)['mid']
        pred = self.csr_decoder(anchor, visible, ids_restore)  # (B, L, ppc)
        return self.csr_loss(pred, patchify(view, p), removed)

    def cross_scale_search(self, anchor: torch.Tensor, local: torch.Tensor,
                           t_multi: dict,
                           masks: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Eq. 3: the anchor's and the rescaled last local's block-
        ``mid_layer`` tokens are searched in the teacher's tokens of the
        multi-person image (as a map); targets: their pasted boxes,
        resized (nearest) to its grid."""
        h, w = t_multi['grid']
        B = anchor.shape[0]
        ref = t_multi['mid'][:, 1:].transpose(1, 2).reshape(B, -1, h, w)
        boxes = F.interpolate(masks, (h, w)).flatten(2)  # (B, 2, h * w)
        return dict(
            loss_css_anchor=self.css_loss(
                self.css_decoder(anchor, ref), boxes[:, 1]),
            loss_css_local=self.css_loss(
                self.css_decoder(local, ref), boxes[:, 0]))
