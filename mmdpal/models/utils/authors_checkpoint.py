"""The authors' DPAL checkpoints <-> mmdpal's student checkpoint.

Their pretraining script (``main_align_pretrain_moe.py``) saves, every
epoch::

    {'student': student.state_dict(),      # DDP: 'module.backbone.*',
                                           #      'module.adapter.*'
     'teacher': ema_teacher.state_dict(),  # the EMA copy, not DDP-wrapped:
                                           #      'backbone.*', 'adapter.*'
     'optimizer': ..., 'epoch': int,
     'args': argparse.Namespace(model='DPAL_kd_vit_tiny_patch16_moe', ...)}

``backbone`` is their ViT (``DPALViT``, timm names: ``cls_token``,
``pos_embed``, ``patch_embed.proj``, ``blocks.N.{norm1, attn.qkv, attn.proj,
norm2, mlp.fc1, mlp.fc2}``, ``norm``, plus an ``inter_norm`` whose output no
loss reads), ``adapter`` their decoder (``LossMOEDecoder``). The heads of the
last block are not in the tensors: ``args.model`` names the factory that
sets them (:data:`AUTHORS_FACTORIES`).

:func:`authors_to_mmdpal` turns such a file, or a released student of any
usual wrapping, into what ``tools/model_converters/extract_student.py``
writes; :func:`mmdpal_to_authors` goes back. Every refusal is one line
(:class:`AuthorsCheckpointError`).
"""
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from .arch import ARCH_KEY, recorded_arch
from .key_maps import (MMPRETRAIN_TO_TIMM_VIT, TIMM_VIT_TO_MMPRETRAIN,
                       rename_key)
from .state_dict import StateDictMismatchError, check_state_dict_fits

# The student factories of their models_pretrain.py: width, depth, heads of
# blocks 1..depth-1 and of the last block, the decoder's output width.
AUTHORS_FACTORIES = {
    'DPAL_kd_vit_tiny_patch16_moe':
    dict(embed_dims=192, num_layers=12, num_heads=6, last_heads=12),
    'DPAL_kd_vit_tiny_patch16_moe_path_large':
    dict(embed_dims=192, num_layers=12, num_heads=6, last_heads=16),
    'DPAL_kd_vit_small_patch16_moe':
    dict(embed_dims=384, num_layers=12, num_heads=6, last_heads=12),
    'DPAL_kd_vit_base_patch16_moe_path_large':
    dict(embed_dims=768, num_layers=12, num_heads=12, last_heads=16),
}
# heads of the blocks before the last, by width, in those factories
_HEADS_BY_WIDTH = {192: 6, 384: 6, 768: 12}
# the input size of their three training scripts (--height 256 --width 128)
_SCRIPT_SIZE = (256, 128)
_WRAPPERS = ('model', 'state_dict', 'student', 'module')
_AUTHORS_VIT = re.compile(r'(^|\.)blocks\.\d+\.attn\.qkv\.weight$')
_MMDPAL_VIT = re.compile(r'(^|\.)layers\.\d+\.attn\.qkv\.weight$')


class AuthorsCheckpointError(ValueError):
    """A file that cannot be converted; the message is one line naming the
    file, what was found and what to do."""


def _tensors(d) -> Dict[str, torch.Tensor]:
    if not isinstance(d, dict):
        return {}
    return {k: v for k, v in d.items() if isinstance(v, torch.Tensor)}


def _has_vit(d) -> bool:
    return any(
        _AUTHORS_VIT.search(k) or _MMDPAL_VIT.search(k) for k in _tensors(d))


def _describe(ckpt) -> str:
    if not isinstance(ckpt, dict):
        return f'a {type(ckpt).__name__}'
    keys = list(ckpt)
    return f'keys {keys[:5]}{" ..." if len(keys) > 5 else ""}'


def select_student(ckpt, path: str, ema: bool = False) -> Tuple[dict, str]:
    """The student's state dict in a file, and where it was found.

    Args:
        ckpt: What the file holds.
        path (str): The file, for the messages.
        ema (bool): The EMA copy (``'teacher'`` of their pretraining
            checkpoint) instead of the trained weights.

    Returns:
        tuple[dict, str]: The state dict (the file's names) and its place,
        e.g. ``"'student'"`` or ``'the top level'``.
    """
    if isinstance(ckpt, dict) and _has_vit(ckpt.get('student')) and _has_vit(
            ckpt.get('teacher')):  # their pretraining checkpoint
        key = 'teacher' if ema else 'student'
        return _tensors(ckpt[key]), repr(key)
    if isinstance(ckpt, dict) and _has_vit(ckpt.get('teacher')):
        if not ema:
            raise AuthorsCheckpointError(
                f"{path}: only an EMA copy ('teacher') of a student: found "
                f'{_describe(ckpt)}; pass --ema to convert it')
        return _tensors(ckpt['teacher']), "'teacher'"
    if ema:
        raise AuthorsCheckpointError(
            f"{path}: no EMA copy ('teacher' next to 'student', as the "
            "authors' pretraining script saves it): found "
            f'{_describe(ckpt)}; drop --ema')
    places = [
        k for k in _WRAPPERS
        if isinstance(ckpt, dict) and _has_vit(ckpt.get(k))
    ]
    if _has_vit(ckpt):
        places.append('the top level')
    if len(places) > 1:
        raise AuthorsCheckpointError(
            f'{path}: two candidate students, in '
            f'{" and ".join(repr(p) for p in places)}: keep one (torch.save'
            '(ckpt[KEY], ...)) and convert that file')
    if not places:
        raise AuthorsCheckpointError(
            f"{path}: neither the authors' pretraining checkpoint "
            "('student' / 'teacher') nor a student state dict (model / "
            'state_dict / student / raw, with blocks.N.attn.qkv.weight, '
            f'...): found {_describe(ckpt)}; pass a checkpoint of their '
            'main_align_pretrain_moe.py or their ViT weights')
    place = places[0]
    state = ckpt if place == 'the top level' else ckpt[place]
    return _tensors(state), repr(place) if place != 'the top level' else place


def _backbone_tensors(state: dict, path: str,
                      where: str) -> Tuple[OrderedDict, List[str]]:
    """The ViT tensors of a student state dict, without the ``module.`` /
    ``backbone.`` prefixes; and the dropped keys (the decoder, ...)."""
    if all(k.startswith('module.') for k in state):
        state = {k[len('module.'):]: v for k, v in state.items()}
    elif any(k.startswith('module.') for k in state):
        stripped = {
            k[len('module.'):]
            for k in state if k.startswith('module.')
        }
        if stripped & set(state):
            raise AuthorsCheckpointError(
                f'{path}: two candidate students in {where}, with and '
                "without the 'module.' prefix (e.g. "
                f'{sorted(stripped & set(state))[0]!r}): keep one')
        state = {
            (k[len('module.'):] if k.startswith('module.') else k): v
            for k, v in state.items()
        }
    nested = {k for k in state if k.startswith('backbone.')}
    if nested:
        bare = {k for k in state if _AUTHORS_VIT.match(k)}
        if bare:
            raise AuthorsCheckpointError(
                f"{path}: two candidate students in {where}, 'backbone.*' "
                f'and unprefixed (e.g. {sorted(bare)[0]!r}): keep one')
        vit = OrderedDict(
            (k[len('backbone.'):], v) for k, v in state.items() if k in nested)
        dropped = [k for k in state if k not in nested]
    else:
        vit, dropped = OrderedDict(state), []
    if any(_MMDPAL_VIT.search(k) for k in vit):
        raise AuthorsCheckpointError(
            f'{path}: {where} is already in mmdpal\'s names (layers.N.*): '
            'load it as it is, or pass a DPAL checkpoint of tools/train.py '
            'to extract_student.py')
    return vit, dropped


def _grouped(keys: Sequence[str]) -> str:
    """``adapter.* (41), inter_norm.weight, ...`` for the log."""
    groups = OrderedDict()
    for k in keys:
        head = k.split('.')[0]
        groups.setdefault(head, []).append(k)
    return ', '.join(v[0] if len(v) == 1 else f'{head}.* ({len(v)})'
                     for head, v in groups.items())


def authors_to_mmdpal(
        ckpt,
        path: str,
        ema: bool = False,
        last_block_heads: Optional[int] = None,
        num_heads: Optional[int] = None,
        img_size: Optional[Tuple[int, int]] = None) -> Tuple[dict, List[str]]:
    """Their checkpoint (or a released student) -> ``{'state_dict':
    {'backbone.*'}, 'meta'}`` as ``extract_student.py`` writes it.

    Args:
        ckpt: What the file holds (:func:`select_student` finds the student).
        path (str): The file, for the messages and ``meta['source']``.
        ema (bool): Convert the EMA copy (``'teacher'``).
        last_block_heads (int, optional): Heads of the last block, when the
            file does not name the factory (``args.model``).
        num_heads (int, optional): Heads of the other blocks, when the file
            does not name the factory; default: their factories' heads for
            the width (6 for 192 and 384, 12 for 768).
        img_size (tuple, optional): The pretraining input (H, W), when the
            file has no ``args``; default: their scripts' 256x128 if the
            position embedding fits it.

    Returns:
        tuple[dict, list[str]]: The checkpoint and notes for the log
        (dropped keys, assumptions).
    """
    state, where = select_student(ckpt, path, ema)
    vit, dropped = _backbone_tensors(state, path, where)
    out, notes = OrderedDict(), []
    for key, value in vit.items():
        new = rename_key(key, TIMM_VIT_TO_MMPRETRAIN)
        if not new or '.gamma' in new:
            dropped.append(key)
            continue
        out[new] = value
    arch = _authors_arch(out, ckpt, path, last_block_heads, num_heads,
                         img_size, notes)
    _check_fits(out, arch, path)
    if dropped:
        notes.insert(
            0, f'dropped {len(dropped)} keys that are not part of the '
            f'student backbone: {_grouped(dropped)}')
    args = ckpt.get('args') if isinstance(ckpt, dict) else None
    meta = dict(
        source=osp.abspath(path),
        algorithm='DPAL',
        weights='ema' if ema else 'raw',
        converted_from=f"the authors' names ({where})")
    if isinstance(ckpt, dict) and isinstance(ckpt.get('epoch'), int):
        meta['epoch'] = ckpt['epoch']
    if isinstance(getattr(args, 'model', None), str):
        meta['authors_model'] = args.model
    meta[ARCH_KEY] = arch
    return dict(
        state_dict=OrderedDict((f'backbone.{k}', v) for k, v in out.items()),
        meta=meta), notes


def _authors_arch(state: dict, ckpt, path: str,
                  last_block_heads: Optional[int], num_heads: Optional[int],
                  img_size: Optional[Tuple[int,
                                           int]], notes: List[str]) -> dict:
    """The architecture record of a converted student: width, depth and
    patch from the tensors, heads from the factory (or the options), grid
    from the file's arguments (or the options)."""
    for key in ('cls_token', 'pos_embed', 'patch_embed.projection.weight'):
        if key not in state:
            raise AuthorsCheckpointError(
                f'{path}: the student has no {key!r} (their name: '
                f"{key.replace('projection', 'proj')!r}): pass their "
                'complete ViT (DPALViT) weights')
    if 'layers.0.attn.qkv.weight' not in state:
        raise AuthorsCheckpointError(
            f"{path}: the student has no 'blocks.0.attn.qkv.weight': pass "
            'their complete ViT (DPALViT) weights')
    width = int(state['cls_token'].shape[-1])
    depth = 1 + max(
        int(m.group(1))
        for m in (re.match(r'layers\.(\d+)\.', k) for k in state) if m)
    patch = [int(k) for k in state['patch_embed.projection.weight'].shape[-2:]]

    args = ckpt.get('args') if isinstance(ckpt, dict) else None
    recorded = recorded_arch(
        ckpt.get('meta') if isinstance(ckpt, dict) else None)
    model = getattr(args, 'model', None)
    factory = AUTHORS_FACTORIES.get(model)
    if factory is not None:
        if (factory['embed_dims'], factory['num_layers']) != (width, depth):
            raise AuthorsCheckpointError(
                f'{path}: args.model={model!r} builds {factory["embed_dims"]}'
                f' dims x {factory["num_layers"]} blocks but the weights are '
                f'{width} x {depth}: the file is inconsistent')
        heads = [factory['num_heads']] * (depth - 1) + [factory['last_heads']]
        told = [('--last-block-heads', last_block_heads, heads[-1]),
                ('--num-heads', num_heads, heads[0])]
        for flag, value, theirs in told:
            if value is not None and value != theirs:
                raise AuthorsCheckpointError(
                    f'{path}: args.model={model!r} has {theirs} heads where '
                    f'{flag} says {value}: drop {flag}')
    elif recorded is not None and 'num_heads' in recorded:
        heads = list(recorded['num_heads'])  # written by mmdpal_to_authors
        if last_block_heads is not None and last_block_heads != heads[-1]:
            raise AuthorsCheckpointError(
                f"{path}: its meta['arch'] has {heads[-1]} heads in the last "
                f'block where --last-block-heads says {last_block_heads}: '
                'drop --last-block-heads')
    elif last_block_heads is not None:
        base = num_heads or _HEADS_BY_WIDTH.get(width)
        if base is None:
            raise AuthorsCheckpointError(
                f'{path}: a width of {width} is none of the authors\' '
                f'students ({sorted(_HEADS_BY_WIDTH)}): give the heads of '
                'the other blocks with --num-heads')
        heads = [base] * (depth - 1) + [last_block_heads]
    else:
        said = f'args.model={model!r} is none of their factories' \
            if model is not None else 'the file has no args.model'
        raise AuthorsCheckpointError(
            f'{path}: the heads of the last block are not known ({said}; '
            'the tensors are the same for any heads): pass '
            '--last-block-heads 12 (their ViT-Ti/S from PATH-B) or 16 '
            '(from PATH-L)')
    for i, h in enumerate(heads):
        if h < 1 or width % h:
            raise AuthorsCheckpointError(
                f'{path}: {h} heads do not divide the width {width} '
                f'(block {i + 1})')

    pos_len = int(state['pos_embed'].shape[1])
    if img_size is None and args is not None and hasattr(args, 'height'):
        img_size = (int(args.height), int(args.width))
    if img_size is None and recorded is not None and recorded.get(
            'pos_embed_grid'):
        img_size = tuple(g * p
                         for g, p in zip(recorded['pos_embed_grid'], patch))
    if img_size is None:
        img_size = _SCRIPT_SIZE
        notes.append(f'input size {_SCRIPT_SIZE[0]}x{_SCRIPT_SIZE[1]} '
                     "assumed (their scripts' --height/--width; the file "
                     'has no args): --img-size H W to change')
    grid = [int(img_size[0]) // patch[0], int(img_size[1]) // patch[1]]
    if grid[0] * grid[1] + 1 != pos_len:
        raise AuthorsCheckpointError(
            f'{path}: the position embedding has {pos_len} positions, not '
            f'the {grid[0]}x{grid[1]} grid + class token of a '
            f'{img_size[0]}x{img_size[1]} input: give the pretraining size '
            'with --img-size H W')
    return dict(
        prefix='backbone.',
        type='VisionTransformer',
        embed_dims=width,
        num_layers=depth,
        num_heads=heads,
        patch_size=patch,
        pos_embed_grid=grid,
        with_cls_token=True)


def vit_from_arch(arch: dict, feedforward_channels: int):
    """An mmpretrain ``VisionTransformer`` of a recorded architecture (the
    student as pretrained: class token, final norm, raw tokens)."""
    from mmpretrain.models import VisionTransformer
    heads = list(arch['num_heads'])
    return VisionTransformer(
        arch=dict(
            embed_dims=arch['embed_dims'],
            num_layers=arch['num_layers'],
            num_heads=heads[0],
            feedforward_channels=feedforward_channels),
        img_size=tuple(
            g * p for g, p in zip(arch['pos_embed_grid'], arch['patch_size'])),
        patch_size=tuple(arch['patch_size']),
        out_type='raw',
        with_cls_token=arch.get('with_cls_token', True),
        final_norm=True,
        layer_cfgs=[dict(num_heads=h) for h in heads])


def _check_fits(state: dict, arch: dict, path: str) -> None:
    """The converted tensors load strictly into a ViT of ``arch``."""
    fc1 = state.get('layers.0.ffn.layers.0.0.weight')
    if fc1 is None:
        raise AuthorsCheckpointError(
            f"{path}: the student has no 'blocks.0.mlp.fc1.weight': pass "
            'their complete ViT (DPALViT) weights')
    vit = vit_from_arch(arch, int(fc1.shape[0]))
    try:
        check_state_dict_fits(
            state,
            vit.state_dict(),
            what=f'{path}: the converted student',
            hint='')
    except StateDictMismatchError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        raise AuthorsCheckpointError(
            f'{path}: the student is not a complete ViT of their layout '
            f'({"; ".join(lines[1:4])}{" ..." if len(lines) > 4 else ""})'
        ) from None


def mmdpal_to_authors(ckpt, path: str) -> Tuple[dict, List[str]]:
    """Our student (``extract_student.py``'s output) in their names.

    Returns ``{'model': {<their DPALViT names>}, 'meta': {...}}``: their
    loaders (``DPALViT.init_from_pretrain`` and the like) take ``'model'``
    first and strip ``backbone.`` / ``module.``, and find every tensor of
    their ViT, ``inter_norm`` included (written as weight 1, bias 0: what
    it holds after their training, no loss reading its output).

    Returns:
        tuple[dict, list[str]]: The checkpoint and notes for the log.
    """
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    vit = OrderedDict((k[len('backbone.'):], v)
                      for k, v in _tensors(state).items()
                      if k.startswith('backbone.'))
    if not vit:
        raise AuthorsCheckpointError(
            f'{path}: no "backbone.*" tensors: found {_describe(ckpt)}; '
            'pass a student written by tools/model_converters/'
            'extract_student.py')
    out, notes = OrderedDict(), []
    for key, value in vit.items():
        new = rename_key(key, MMPRETRAIN_TO_TIMM_VIT)
        if not new:
            raise AuthorsCheckpointError(
                f'{path}: backbone.{key} has no counterpart in the authors\' '
                'ViT (a plain ViT: class token, position embedding, '
                'pre-norm blocks without layer scale): only such a student '
                'converts')
        out[new] = value
    meta = dict(ckpt.get('meta') or {}) if isinstance(ckpt, dict) else {}
    width = int(out['cls_token'].shape[-1]) if 'cls_token' in out else None
    if width is None:
        raise AuthorsCheckpointError(
            f'{path}: the student has no class token, which their ViT '
            'needs')
    out['inter_norm.weight'] = torch.ones(width)
    out['inter_norm.bias'] = torch.zeros(width)
    notes.append('inter_norm (their ViT\'s norm after block 7, read by no '
                 'loss) written as weight 1, bias 0')
    arch = recorded_arch(meta)
    if arch is not None and 'num_heads' in arch:
        heads = list(arch['num_heads'])
        for name, f in AUTHORS_FACTORIES.items():
            if (f['embed_dims'], f['num_layers']) == (
                    arch['embed_dims'],
                    arch['num_layers']) and heads == [f['num_heads']] * (
                        f['num_layers'] - 1) + [f['last_heads']]:
                meta['authors_model'] = name
                break
    else:
        notes.append("no meta['arch'] in the file: their factory (heads) "
                     'is not recorded')
    meta['source'] = osp.abspath(path)
    return dict(model=out, meta=meta), notes
