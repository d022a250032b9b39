"""Convert a PATH / MAE / HAP / timm ViT checkpoint to the names of the DPAL
teacher (mmpretrain ``VisionTransformer``).

    python tools/model_converters/path_to_mmdpal.py path_b.pth \
        checkpoints/path-b_mmdpal.pth

The released PATH checkpoint is ``{'model': {...}}`` in MAE/timm names,
sometimes with ``module.`` / ``backbone.`` prefixes; heads and decoders are
dropped (and listed). The output is a plain state dict of tensors that the
teacher loads strictly with ``weights_only=True``. The file is read with
``weights_only=True`` allowing ``argparse.Namespace`` (MAE / DINO scripts
save their arguments) and nothing else. A file with ``student`` and
``teacher`` (DINO-style) needs ``--key``; a DPAL pretraining checkpoint is a
student, converted by ``dpal_official_to_mmdpal.py``.
"""
import argparse
import os
import os.path as osp
import sys

import torch

from mmdpal.models.teachers.converters import (AmbiguousCheckpointError,
                                               convert_timm_vit)
from mmdpal.utils import silence_stack_deprecations
from mmdpal.utils.checkpoint import (UnsafeCheckpointError,
                                     load_checkpoint_allowing)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='released checkpoint (.pth)')
    parser.add_argument('dst', help='output state dict (.pth)')
    parser.add_argument(
        '--key',
        help="the entry to convert in a file with two networks, e.g. "
        "'teacher' (DINO-style checkpoints)")
    args = parser.parse_args()

    name = osp.basename(__file__)
    try:
        ckpt = load_checkpoint_allowing(
            args.src, [argparse.Namespace], what='source')
        state, dropped, notes = convert_timm_vit(ckpt, args.key)
    except (FileNotFoundError, UnsafeCheckpointError) as e:
        sys.exit(f'{name}: {e}')
    except AmbiguousCheckpointError as e:
        sys.exit(f'{name}: {args.src}: {e}')
    if not state:
        sys.exit(f'{name}: no ViT weights found in {args.src!r} (expected '
                 "MAE/timm names such as 'blocks.0.attn.qkv.weight', "
                 "'patch_embed.proj.weight')")
    for note in notes:
        print('note:', note)
    if dropped:
        print(f'dropped {len(dropped)} keys that are not part of the ViT '
              f'backbone: {dropped[:10]}{" ..." if len(dropped) > 10 else ""}')
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(state, args.dst)
    print(f'wrote {len(state)} tensors to {args.dst}')


if __name__ == '__main__':
    silence_stack_deprecations()
    main()
