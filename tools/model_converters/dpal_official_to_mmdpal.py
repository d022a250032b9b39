"""Convert the authors' DPAL checkpoint (or a released student) to mmdpal's
student checkpoint, for fine-tuning.

    python tools/model_converters/dpal_official_to_mmdpal.py [--ema] \
        work_dirs/lup1m_path-b_to_vit_tiny/checkpoint.pth \
        checkpoints/dpal_vit-ti_student.pth

SRC is what their pretraining script (``main_align_pretrain_moe.py``)
saves, ``{'student': <DDP state dict>, 'teacher': <its EMA copy>,
'optimizer', 'epoch', 'args': argparse.Namespace}``, or a student file of any
usual wrapping (``model`` / ``state_dict`` / ``student`` / raw, with or
without ``module.`` / ``backbone.``). DST is what
``tools/model_converters/extract_student.py`` writes: ``{'state_dict':
{'backbone.*'}, 'meta'}``, the trained student by default, the EMA copy with
``--ema``; their ``inter_norm`` and decoder (``adapter``) are dropped and
listed. ``meta['arch']`` records the architecture, heads of every block
included: the heads of the last block come from the file (``args.model``
names their factory: 12 for ViT-Ti/S from PATH-B, 16 from PATH-L) or from
``--last-block-heads``; ``mmdpal.StrictPretrained`` checks them against the
fine-tuning config.

The file is read with ``weights_only=True``, allowing ``argparse.Namespace``
and nothing else: a file holding other objects is refused, not unpickled.
Every refusal is one line naming the file, what was found and what to do.
"""
import argparse
import os
import os.path as osp
import sys

import torch

from mmdpal.models.utils.authors_checkpoint import (AuthorsCheckpointError,
                                                    authors_to_mmdpal)
from mmdpal.utils import silence_stack_deprecations
from mmdpal.utils.checkpoint import (UnsafeCheckpointError,
                                     load_checkpoint_allowing)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'src', help="the authors' pretraining checkpoint or a student file")
    parser.add_argument('dst', help='output student checkpoint (.pth)')
    parser.add_argument(
        '--ema',
        action='store_true',
        help="convert the EMA copy ('teacher') instead of the trained "
        "student ('student', the default)")
    parser.add_argument(
        '--last-block-heads',
        type=int,
        help='heads of the last block when the file does not name the '
        'factory (args.model): 12 for ViT-Ti/S from PATH-B, 16 from PATH-L')
    parser.add_argument(
        '--num-heads',
        type=int,
        help='heads of the other blocks, likewise (default: their '
        'factories\' 6 for widths 192 and 384, 12 for 768)')
    parser.add_argument(
        '--img-size',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='pretraining input size when the file has no args (default: '
        'their scripts\' 256 128)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        ckpt = load_checkpoint_allowing(
            args.src, [argparse.Namespace], what='checkpoint')
        out, notes = authors_to_mmdpal(
            ckpt,
            args.src,
            ema=args.ema,
            last_block_heads=args.last_block_heads,
            num_heads=args.num_heads,
            img_size=tuple(args.img_size) if args.img_size else None)
    except (FileNotFoundError, UnsafeCheckpointError,
            AuthorsCheckpointError) as e:
        sys.exit(f'{osp.basename(__file__)}: {e}')
    for note in notes:
        print('note:', note)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(out, args.dst)
    arch = out['meta']['arch']
    print(f'wrote {len(out["state_dict"])} backbone tensors '
          f'({out["meta"]["weights"]} weights; {arch["embed_dims"]} dims, '
          f'{arch["num_layers"]} blocks, heads {arch["num_heads"]}) to '
          f'{args.dst}')


if __name__ == '__main__':
    silence_stack_deprecations()
    main()
