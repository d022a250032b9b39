"""Extract the student backbone from a DPAL checkpoint, for fine-tuning.

    python tools/model_converters/extract_student.py [--ema] \
        work_dirs/vit-ti_path-b_lup1m/epoch_100.pth checkpoints/dpal_vit-ti.pth

By default it exports the trained (raw) student weights. ``--ema`` exports
the exponential moving average of them instead, which a config with
``EMAHook`` keeps (the official config, as the authors' script); which of
the two the paper fine-tuned is not stated. (mmengine's EMAHook writes the
EMA weights to ``state_dict`` and the raw ones to ``ema_state_dict``,
prefixed ``module.``; this tool reads each from where it is.)

The output is ``{'state_dict': {'backbone.<key>': tensor}, 'meta': {...}}``.
``meta['arch']`` records the student's architecture (width, depth, heads of
every block, patch size, position grid, class token), read from the config
that trained it (``meta['cfg']`` of the checkpoint, as tools/train.py
writes it; ``--config`` for a checkpoint without it) and checked against
the tensors: the heads are in no tensor shape, and
``mmdpal.StrictPretrained`` compares them with the fine-tuning config.
At the pretraining input size, ``mmpretrain.VisionTransformer`` loads it with
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``
(0 missing keys). The configs in configs/downstream/ fine-tune at other sizes
(256x192, 1400x800, 576x384), where the student's non-square 16x8 position
grid must be resized, which mmpretrain's load hook cannot do (it assumes a
square grid): they load it with
``model.init_cfg=dict(type='mmdpal.StrictPretrained', ...)``, which also
fails on any missing / unexpected / mis-shaped key or other architecture.
The decoder and the (never saved) teacher are left out. A checkpoint of the
authors' own code goes through ``dpal_official_to_mmdpal.py`` instead.
"""
import argparse
import os
import os.path as osp
import pickle
import sys
from typing import Optional

import torch

import mmdpal  # noqa: F401  (allow-lists mmengine checkpoint types)
from mmdpal.models.utils.arch import ARCH_KEY, backbone_arch
from mmdpal.models.utils.state_dict import (StateDictMismatchError,
                                            check_state_dict_fits)
from mmdpal.utils import silence_stack_deprecations
from mmdpal.utils.checkpoint import unpickling_refusal

AUTHORS_HINT = ("a checkpoint of the authors' pretraining script? Convert "
                'it with tools/model_converters/dpal_official_to_mmdpal.py')


class ExtractError(ValueError):
    """A checkpoint this tool cannot extract from; one line."""


def _load(src: str) -> dict:
    if not osp.isfile(src):
        raise ExtractError(f'DPAL checkpoint not found: {src!r}')
    try:
        return torch.load(src, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        raise ExtractError(
            f'{src!r} holds {unpickling_refusal(e)}, not only tensors and '
            f'what mmengine writes: {AUTHORS_HINT}') from None


def _backbone_from_config(text: Optional[str], path: Optional[str]):
    """The student backbone that the config builds."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mmdpal.registry import MODELS
    cfg = Config.fromfile(path) if path else Config.fromstring(text, '.py')
    backbone = cfg.get('model', {}).get('backbone')
    if backbone is None:
        raise ExtractError(
            f'the config {path or "in the checkpoint"} has no '
            'model.backbone: pass the DPAL config the student was trained '
            'with (--config)')
    with DefaultScope.overwrite_default_scope('mmdpal'):
        return MODELS.build(backbone)


def student_arch(ckpt: dict, backbone_state: dict, src: str,
                 config: Optional[str]) -> dict:
    """The student's architecture record, from ``--config`` or the
    checkpoint's ``meta['cfg']``, checked against its tensors."""
    text = ckpt.get('meta', {}).get('cfg') if isinstance(
        ckpt.get('meta'), dict) else None
    if config is None and not isinstance(text, str):
        raise ExtractError(
            f"{src!r} records no config (meta['cfg'], as tools/train.py "
            'writes it), so the heads of its blocks are unknown: pass the '
            'config it was trained with, --config CONFIG')
    where = config or f"{src!r} (meta['cfg'])"
    try:
        backbone = _backbone_from_config(text, config)
    except ExtractError:
        raise
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ''
        raise ExtractError(
            f'the student backbone of the config {where} could not be built '
            f'({type(e).__name__}: {first[:160]}): pass the config it was '
            'trained with, --config CONFIG') from None
    state = {k[len('backbone.'):]: v for k, v in backbone_state.items()}
    try:
        check_state_dict_fits(state, backbone.state_dict(), what='', hint='')
    except StateDictMismatchError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        raise ExtractError(
            f'the student backbone of the config {where} does not fit the '
            f'weights of {src!r} ({"; ".join(lines[1:4])}): pass the config '
            'it was trained with, --config CONFIG') from None
    return backbone_arch(backbone, 'backbone.')


def extract_student(src: str,
                    ema: bool = False,
                    config: Optional[str] = None) -> dict:
    """The ``backbone.*`` tensors of a DPAL checkpoint (the trained weights,
    or their EMA with ``ema=True``) and the student's architecture."""
    ckpt = _load(src)
    if not isinstance(ckpt, dict):
        raise ExtractError(f'{src!r} holds a {type(ckpt).__name__}, not a '
                           'checkpoint of tools/train.py')
    if {'student', 'teacher'} <= set(ckpt):
        raise ExtractError(f"{src!r} has 'student' and 'teacher', no "
                           f"'state_dict': {AUTHORS_HINT}")
    state = ckpt.get('state_dict', ckpt)
    if 'ema_state_dict' in ckpt:  # EMAHook swapped the two at saving
        averaged = state
        state = {
            k[len('module.'):]: v
            for k, v in ckpt['ema_state_dict'].items()
            if k.startswith('module.')
        }
        if ema:
            state = averaged
    elif ema:
        raise ExtractError(f'{src!r} has no EMA weights (no '
                           '"ema_state_dict": trained without EMAHook): '
                           'drop --ema')
    backbone = {k: v for k, v in state.items() if k.startswith('backbone.')}
    if not backbone:
        authors = any('blocks.0.attn.qkv' in k for k in state)
        raise ExtractError(
            f'{src!r} has no "backbone.*" keys (found e.g. '
            f'{list(state)[:5]}): ' +
            (AUTHORS_HINT if authors else 'pass a checkpoint written by '
             'tools/train.py with a DPAL config'))
    meta = dict(
        source=osp.abspath(src),
        algorithm='DPAL',
        weights='ema' if ema else 'raw')
    if isinstance(ckpt.get('meta'), dict):
        meta.update({
            k: ckpt['meta'][k]
            for k in ('epoch', 'iter') if k in ckpt['meta']
        })
    meta[ARCH_KEY] = student_arch(ckpt, backbone, src, config)
    return dict(state_dict=backbone, meta=meta)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'src', help='DPAL checkpoint written by tools/train.py')
    parser.add_argument('dst', help='output backbone checkpoint')
    parser.add_argument(
        '--ema',
        action='store_true',
        help='export the EMA of the student (configs with EMAHook) instead '
        'of the trained weights (the default)')
    parser.add_argument(
        '--config',
        help="the DPAL config the student was trained with, for a "
        "checkpoint without meta['cfg'] (tools/train.py writes it)")
    args = parser.parse_args(argv)
    try:
        out = extract_student(args.src, ema=args.ema, config=args.config)
    except ExtractError as e:
        sys.exit(f'{osp.basename(__file__)}: {e}')
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(out, args.dst)
    arch = out['meta'][ARCH_KEY]
    heads = f', heads {arch["num_heads"]}' if 'num_heads' in arch else ''
    print(f'wrote {len(out["state_dict"])} backbone tensors '
          f'({out["meta"]["weights"]} weights; {arch["type"]}{heads}) to '
          f'{args.dst}')


if __name__ == '__main__':
    silence_stack_deprecations()
    main()
