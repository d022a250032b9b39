"""Convert a PATH / MAE / HAP / timm ViT checkpoint to the names of the DPAL
teacher (mmpretrain ``VisionTransformer``).

    python tools/model_converters/path_to_mmdpal.py path_b.pth \
        checkpoints/path-b_mmdpal.pth

The released PATH checkpoint is ``{'model': {...}}`` in MAE/timm names,
sometimes with ``module.`` / ``backbone.`` prefixes; heads and decoders are
dropped (and listed). The output is a plain state dict of tensors that the
teacher loads strictly with ``weights_only=True``.
"""
import argparse
import os
import os.path as osp

import torch

from mmdpal.models.teachers.converters import convert_timm_vit
from mmdpal.utils import (load_third_party_checkpoint,
                          silence_stack_deprecations)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='released checkpoint (.pth)')
    parser.add_argument('dst', help='output state dict (.pth)')
    args = parser.parse_args()

    ckpt = load_third_party_checkpoint(args.src, what='source')
    state, dropped, notes = convert_timm_vit(ckpt)
    if not state:
        raise SystemExit(
            f'no ViT weights found in {args.src!r} (expected MAE/timm names '
            "such as 'blocks.0.attn.qkv.weight', 'patch_embed.proj.weight')")
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
