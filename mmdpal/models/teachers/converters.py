"""Key maps from released ViT checkpoints to mmpretrain ``VisionTransformer``
names (what :class:`ViTTeacher` loads). Used by ``tools/model_converters/``.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

from ..utils.key_maps import TIMM_VIT_TO_MMPRETRAIN, rename_key
from ..utils.state_dict import pos_embed_layout

# Hugging Face Dinov2Model names -> mmpretrain names
_HF_DINOV2_RULES = [
    (r'^embeddings\.cls_token$', 'cls_token'),
    (r'^embeddings\.position_embeddings$', 'pos_embed'),
    (r'^embeddings\.patch_embeddings\.projection\.',
     'patch_embed.projection.'),
    (r'^encoder\.layer\.(\d+)\.norm1\.', r'layers.\1.ln1.'),
    (r'^encoder\.layer\.(\d+)\.norm2\.', r'layers.\1.ln2.'),
    (r'^encoder\.layer\.(\d+)\.attention\.output\.dense\.',
     r'layers.\1.attn.proj.'),
    (r'^encoder\.layer\.(\d+)\.layer_scale1\.lambda1$',
     r'layers.\1.attn.gamma1.weight'),
    (r'^encoder\.layer\.(\d+)\.layer_scale2\.lambda1$',
     r'layers.\1.ffn.gamma2.weight'),
    (r'^encoder\.layer\.(\d+)\.mlp\.fc1\.', r'layers.\1.ffn.layers.0.0.'),
    (r'^encoder\.layer\.(\d+)\.mlp\.fc2\.', r'layers.\1.ffn.layers.1.'),
    (r'^layernorm\.', 'ln1.'),
]
_PREFIXES = ('module.', 'backbone.', 'encoder.', 'model.')


class AmbiguousCheckpointError(ValueError):
    """A checkpoint holding two candidate networks; one line."""


def unwrap_state_dict(ckpt: dict,
                      key: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """The tensor dict of a released checkpoint (``model`` / ``state_dict``
    / ``module`` wrappers removed).

    A file with both ``student`` and ``teacher`` (DINO, DPAL: the teacher is
    the EMA of the student) holds two networks: ``key`` must say which, and
    a DPAL one (its decoder, ``adapter.*``, next to the ViT) is refused,
    since it is a student, not a teacher.
    """
    if isinstance(ckpt, dict) and all(
            isinstance(ckpt.get(k), dict) for k in ('student', 'teacher')):
        if any('adapter.' in k for k in ckpt['student']):
            raise AmbiguousCheckpointError(
                "a DPAL pretraining checkpoint (the student and its EMA "
                "'teacher', with the decoder 'adapter.*'), not a teacher: "
                'convert it with tools/model_converters/'
                'dpal_official_to_mmdpal.py')
        if key is None:
            raise AmbiguousCheckpointError(
                "two networks, 'student' and 'teacher' (in DINO-style "
                "checkpoints the EMA of the student): choose one with --key "
                'student or --key teacher')
    if key is not None:
        if not isinstance(ckpt, dict) or not isinstance(ckpt.get(key), dict):
            raise AmbiguousCheckpointError(
                f'no {key!r} in the checkpoint (found '
                f'{list(ckpt)[:8] if isinstance(ckpt, dict) else ckpt}): '
                'drop --key or choose another')
        ckpt = ckpt[key]
    for k in ('model', 'state_dict', 'module', 'teacher'):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(k), dict):
            ckpt = ckpt[k]
    return {k: v for k, v in ckpt.items() if isinstance(v, torch.Tensor)}


def _strip_prefixes(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if key.startswith(p) and not key.startswith('encoder.layer'):
                key, changed = key[len(p):], True
    return key


def _pos_embed_with_cls(pos: torch.Tensor, notes: List[str]) -> torch.Tensor:
    """mmpretrain keeps a class-token slot in ``pos_embed``; add a zero one
    when the checkpoint has a square grid only."""
    n = pos.shape[1]
    try:
        extra, grid = pos_embed_layout(n)
    except ValueError:  # not square: left as is, the strict load names it
        return pos
    if extra == 0:
        notes.append(f'pos_embed had no class-token slot ({n} = '
                     f'{grid[0]}^2 positions): a zero slot was added')
        return torch.cat([pos.new_zeros(1, 1, pos.shape[-1]), pos], dim=1)
    return pos


def convert_timm_vit(
        ckpt: dict,
        key: Optional[str] = None) -> Tuple[OrderedDict, List[str], List[str]]:
    """PATH / MAE / timm ViT -> mmpretrain ``VisionTransformer`` names.

    Args:
        ckpt (dict): The released checkpoint.
        key (str, optional): Its entry to convert, for a file with two
            networks (``'student'`` / ``'teacher'``).

    Returns:
        tuple: (state dict, dropped keys, notes).
    """
    src = unwrap_state_dict(ckpt, key)
    out, dropped, notes = OrderedDict(), [], []
    qv_bias = {}
    for key, value in src.items():
        k = _strip_prefixes(key)
        m = re.match(r'^blocks\.(\d+)\.attn\.(q|v)_bias$', k)
        if m:  # BEiT-style split bias -> one qkv bias with k = 0
            qv_bias.setdefault(int(m.group(1)), {})[m.group(2)] = value
            continue
        new = rename_key(k, TIMM_VIT_TO_MMPRETRAIN)
        if not new:
            dropped.append(key)
            continue
        if new == 'pos_embed':
            value = _pos_embed_with_cls(value, notes)
        out[new] = value
    for i, b in sorted(qv_bias.items()):
        out[f'layers.{i}.attn.qkv.bias'] = torch.cat(
            [b['q'], torch.zeros_like(b['q']), b['v']])
    return out, dropped, notes


def convert_hf_dinov2(
        named: Dict[str, torch.Tensor]) -> Tuple[OrderedDict, List[str]]:
    """Hugging Face ``Dinov2Model`` names -> mmpretrain names.

    Separate q/k/v projections (``attention.attention.{query,key,value}``,
    weights in torch's (out, in) layout) are fused into ``attn.qkv``.

    Returns:
        tuple: (state dict, dropped keys).
    """
    out, dropped, qkv = OrderedDict(), [], {}
    for key, value in named.items():
        k = _strip_prefixes(key)
        m = re.match(
            r'^encoder\.layer\.(\d+)\.attention\.attention\.'
            r'(query|key|value)\.(weight|bias)$', k)
        if m:
            qkv.setdefault((int(m.group(1)), m.group(3)), {})[m.group(2)] = \
                value
            continue
        new = rename_key(k, _HF_DINOV2_RULES)
        if not new:
            dropped.append(key)
            continue
        out[new] = value
    for (i, kind), parts in sorted(qkv.items()):
        out[f'layers.{i}.attn.qkv.{kind}'] = torch.cat(
            [parts['query'], parts['key'], parts['value']], dim=0)
    return out, dropped
