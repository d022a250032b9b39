"""Renaming rules between timm-style ViT names (MAE, PATH, the authors'
DPAL code) and mmpretrain ``VisionTransformer`` names, shared by the teacher
converters (``mmdpal.models.teachers.converters``) and the authors'
checkpoint reader (``mmdpal.models.utils.authors_checkpoint``)."""
import re
from typing import List, Tuple

Rules = List[Tuple[str, str]]

# (timm / MAE / PATH / the authors' name, mmpretrain name) of each tensor
# group: ``{i}`` is the block index; a name ending in a dot is a prefix,
# any other a whole key
_NAME_PAIRS = [
    ('patch_embed.proj.', 'patch_embed.projection.'),
    ('blocks.{i}.norm1.', 'layers.{i}.ln1.'),
    ('blocks.{i}.norm2.', 'layers.{i}.ln2.'),
    ('blocks.{i}.attn.qkv.', 'layers.{i}.attn.qkv.'),
    ('blocks.{i}.attn.proj.', 'layers.{i}.attn.proj.'),
    ('blocks.{i}.mlp.fc1.', 'layers.{i}.ffn.layers.0.0.'),
    ('blocks.{i}.mlp.fc2.', 'layers.{i}.ffn.layers.1.'),
    ('norm.', 'ln1.'),
    ('cls_token', 'cls_token'),
    ('pos_embed', 'pos_embed'),
]
# layer scale (DINOv2-style teachers); the authors' ViT has none, so it is
# renamed one way only
_LAYER_SCALE_PAIRS = [
    ('blocks.{i}.ls1.gamma', 'layers.{i}.attn.gamma1.weight'),
    ('blocks.{i}.ls2.gamma', 'layers.{i}.ffn.gamma2.weight'),
]


def _rule(src: str, dst: str) -> Tuple[str, str]:
    """The ``(pattern, replacement)`` that renames ``src`` to ``dst``."""
    pattern = re.escape(src).replace(re.escape('{i}'), r'(\d+)')
    return ('^' + pattern + ('' if src.endswith('.') else '$'),
            dst.replace('{i}', r'\1'))


# timm names -> mmpretrain names
TIMM_VIT_TO_MMPRETRAIN: Rules = [
    _rule(timm, mmpre) for timm, mmpre in _NAME_PAIRS + _LAYER_SCALE_PAIRS
]
# mmpretrain names -> timm names, the inverse (without layer scale)
MMPRETRAIN_TO_TIMM_VIT: Rules = [
    _rule(mmpre, timm) for timm, mmpre in _NAME_PAIRS
]


def rename_key(key: str, rules: Rules) -> str:
    """``key`` renamed by the first rule whose pattern matches it.

    Args:
        key (str): A state-dict key.
        rules (list[tuple[str, str]]): ``(pattern, replacement)`` pairs for
            :func:`re.subn`, tried in order.

    Returns:
        str: The renamed key, or ``''`` when no rule matches (the caller
        decides whether an unmatched key is dropped or an error).
    """
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return ''
