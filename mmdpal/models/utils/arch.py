"""A student's architecture, written into its checkpoint's ``meta`` and
checked where the checkpoint is loaded.

Tensor shapes do not say how many attention heads a block has (the authors'
ViT-Ti has 12 heads in its last block and 6 in the others, with the tensors
of 6 everywhere), so a student loaded into a backbone with other heads loads
without a single missing key and is fine-tuned as another network. The
converters (``tools/model_converters/extract_student.py``,
``dpal_official_to_mmdpal.py``) therefore record what the tensors cannot
say, and :class:`StrictPretrained` compares it with the config's backbone.

The record, ``meta['arch']`` of a student checkpoint::

    dict(prefix='backbone.',          # the part of the state dict it describes
         type='VisionTransformer',
         embed_dims=192,              # width
         num_layers=12,               # depth
         num_heads=[6] * 11 + [12],   # heads of every block
         patch_size=[16, 16],
         pos_embed_grid=[16, 8],      # patch grid of its position embedding
         with_cls_token=True)
"""
from typing import List, Optional

import torch.nn as nn

ARCH_KEY = 'arch'


def backbone_arch(module: nn.Module, prefix: str = 'backbone.') -> dict:
    """The architecture record of a built backbone.

    Args:
        module (nn.Module): The backbone. An mmpretrain ``VisionTransformer``
            (or a module with its attributes) is described in full; any
            other module by its type only.
        prefix (str): The state dict prefix of the part. Defaults to
            ``'backbone.'``.

    Returns:
        dict: The record (module docstring); plain Python types only, so
        that it loads with ``torch.load(weights_only=True)``.
    """
    arch = dict(prefix=prefix, type=type(module).__name__)
    layers = getattr(module, 'layers', None)
    patch_embed = getattr(module, 'patch_embed', None)
    projection = getattr(patch_embed, 'projection', None)
    if layers is None or projection is None or not all(
            hasattr(getattr(layer, 'attn', None), 'num_heads')
            for layer in layers):
        return arch  # not a ViT (e.g. Swin): its type only
    cls_token = getattr(module, 'cls_token', None)
    arch.update(
        embed_dims=int(module.embed_dims),
        num_layers=len(layers),
        num_heads=[int(layer.attn.num_heads) for layer in layers],
        patch_size=[int(k) for k in projection.kernel_size],
        pos_embed_grid=[int(g) for g in module.patch_resolution],
        with_cls_token=cls_token is not None)
    return arch


def layer_cfgs_expression(num_heads: List[int]) -> str:
    """``num_heads`` of every block as a ``layer_cfgs`` value, e.g.
    ``[dict(num_heads=6)] * 11 + [dict(num_heads=12)]``."""
    runs = []
    for heads in num_heads:
        if runs and runs[-1][0] == heads:
            runs[-1][1] += 1
        else:
            runs.append([heads, 1])
    return ' + '.join(f'[dict(num_heads={h})]' + (f' * {n}' if n > 1 else '')
                      for h, n in runs)


def arch_differences(checkpoint: dict,
                     model: dict,
                     part: str = 'backbone') -> List[str]:
    """What differs between the recorded and the built architecture, one
    line per difference, each naming the config key that changes it.

    The position grid and the class token are left out: fine-tuning at
    another size, or without the class token, is what the loader resizes
    and drops. Two ViTs are compared by what they compute (width, depth,
    heads, patch size), not by class name: a ViT subclass that only
    changes how the position embedding is resized (``ResampledPosViT`` of
    the official downstream configs) takes the same student.

    Args:
        checkpoint (dict): ``meta['arch']`` of the checkpoint.
        model (dict): :func:`backbone_arch` of the model's part.
        part (str): The part's name in the config (``model.<part>``).

    Returns:
        list[str]: Empty when they agree.
    """
    key = f'model.{part}'
    both_vits = 'num_heads' in checkpoint and 'num_heads' in model
    if not both_vits:  # e.g. a Swin: only its type is recorded
        if checkpoint.get('type') == model.get('type'):
            return []
        return [
            f'type: checkpoint {checkpoint.get("type")}, model '
            f'{model.get("type")} ({key}.type)'
        ]
    lines = []
    for name, what, cfg_key in (('embed_dims', 'width',
                                 'arch'), ('num_layers', 'depth', 'arch'),
                                ('patch_size', 'patch size', 'patch_size')):
        ours, theirs = checkpoint.get(name), model.get(name)
        if ours is not None and list(_as_list(ours)) != list(_as_list(theirs)):
            lines.append(f'{what} ({name}): checkpoint {ours}, model '
                         f'{theirs} ({key}.{cfg_key})')
    heads, model_heads = list(checkpoint['num_heads']), list(
        model['num_heads'])
    differing = [
        i for i in range(min(len(heads), len(model_heads)))
        if heads[i] != model_heads[i]
    ]
    for i in differing:
        lines.append(f'heads of block {i + 1} (layers.{i}): checkpoint '
                     f'{heads[i]}, model {model_heads[i]}')
    if differing:
        lines.append(f'set {key}.layer_cfgs={layer_cfgs_expression(heads)}')
    return lines


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def recorded_arch(meta: Optional[dict],
                  prefix: str = 'backbone.') -> Optional[dict]:
    """``meta['arch']`` when it describes the part under ``prefix``."""
    arch = meta.get(ARCH_KEY) if isinstance(meta, dict) else None
    if not isinstance(arch, dict) or arch.get('prefix', prefix) != prefix:
        return None
    return arch
