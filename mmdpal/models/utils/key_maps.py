"""Renaming rules between timm-style ViT names (MAE, PATH, the authors'
DPAL code) and mmpretrain ``VisionTransformer`` names, shared by the teacher
converters (``mmdpal.models.teachers.converters``) and the authors'
checkpoint reader (``mmdpal.models.utils.authors_checkpoint``)."""
import re
from typing import List, Tuple

Rules = List[Tuple[str, str]]

# timm / MAE / PATH / the authors' block names -> mmpretrain names
TIMM_VIT_TO_MMPRETRAIN: Rules = [
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'),
    (r'^blocks\.(\d+)\.norm1\.', r'layers.\1.ln1.'),
    (r'^blocks\.(\d+)\.norm2\.', r'layers.\1.ln2.'),
    (r'^blocks\.(\d+)\.attn\.qkv\.', r'layers.\1.attn.qkv.'),
    (r'^blocks\.(\d+)\.attn\.proj\.', r'layers.\1.attn.proj.'),
    (r'^blocks\.(\d+)\.mlp\.fc1\.', r'layers.\1.ffn.layers.0.0.'),
    (r'^blocks\.(\d+)\.mlp\.fc2\.', r'layers.\1.ffn.layers.1.'),
    (r'^blocks\.(\d+)\.ls1\.gamma$', r'layers.\1.attn.gamma1.weight'),
    (r'^blocks\.(\d+)\.ls2\.gamma$', r'layers.\1.ffn.gamma2.weight'),
    (r'^norm\.', 'ln1.'),
    (r'^(cls_token|pos_embed)$', r'\1'),
]

# mmpretrain names -> timm names, the inverse of TIMM_VIT_TO_MMPRETRAIN
# (without layer scale, which the authors' ViT does not have)
MMPRETRAIN_TO_TIMM_VIT: Rules = [
    (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
    (r'^layers\.(\d+)\.ln1\.', r'blocks.\1.norm1.'),
    (r'^layers\.(\d+)\.ln2\.', r'blocks.\1.norm2.'),
    (r'^layers\.(\d+)\.attn\.qkv\.', r'blocks.\1.attn.qkv.'),
    (r'^layers\.(\d+)\.attn\.proj\.', r'blocks.\1.attn.proj.'),
    (r'^layers\.(\d+)\.ffn\.layers\.0\.0\.', r'blocks.\1.mlp.fc1.'),
    (r'^layers\.(\d+)\.ffn\.layers\.1\.', r'blocks.\1.mlp.fc2.'),
    (r'^ln1\.', 'norm.'),
    (r'^(cls_token|pos_embed)$', r'\1'),
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
