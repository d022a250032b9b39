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
At the pretraining input size, ``mmpretrain.VisionTransformer`` loads it with
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``
(0 missing keys). The configs in configs/downstream/ fine-tune at other sizes
(256x192, 1400x800, 576x384), where the student's non-square 16x8 position
grid must be resized, which mmpretrain's load hook cannot do (it assumes a
square grid): they load it with
``model.init_cfg=dict(type='mmdpal.StrictPretrained', ...)``, which also
fails on any missing / unexpected / mis-shaped key. The decoder and the
(never saved) teacher are left out.
"""
import argparse
import os
import os.path as osp

import torch

import mmdpal  # noqa: F401  (allow-lists mmengine checkpoint types)
from mmdpal.utils import silence_stack_deprecations


def extract_student(src: str, ema: bool = False) -> dict:
    """The ``backbone.*`` tensors of a DPAL checkpoint: the trained weights,
    or their EMA with ``ema=True``."""
    if not osp.isfile(src):
        raise FileNotFoundError(f'DPAL checkpoint not found: {src!r}')
    ckpt = torch.load(src, map_location='cpu', weights_only=True)
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
        raise KeyError(f'{src!r} has no EMA weights (no "ema_state_dict": '
                       'trained without EMAHook): drop --ema')
    backbone = {k: v for k, v in state.items() if k.startswith('backbone.')}
    if not backbone:
        raise KeyError(f'{src!r} has no "backbone.*" keys (found e.g. '
                       f'{list(state)[:5]}): pass a checkpoint written by '
                       'tools/train.py with a DPAL config')
    meta = dict(
        source=osp.abspath(src),
        algorithm='DPAL',
        weights='ema' if ema else 'raw')
    if isinstance(ckpt.get('meta'), dict):
        meta.update({
            k: ckpt['meta'][k]
            for k in ('epoch', 'iter') if k in ckpt['meta']
        })
    return dict(state_dict=backbone, meta=meta)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'src', help='DPAL checkpoint written by tools/train.py')
    parser.add_argument('dst', help='output backbone checkpoint')
    parser.add_argument(
        '--ema',
        action='store_true',
        help='export the EMA of the student (configs with EMAHook) instead '
        'of the trained weights (the default)')
    args = parser.parse_args()
    out = extract_student(args.src, ema=args.ema)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(out, args.dst)
    print(f'wrote {len(out["state_dict"])} backbone tensors '
          f'({out["meta"]["weights"]} weights) to {args.dst}')


if __name__ == '__main__':
    silence_stack_deprecations()
    main()
