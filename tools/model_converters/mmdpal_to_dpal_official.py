"""Write an mmdpal student in the names of the authors' DPAL code.

    python tools/model_converters/mmdpal_to_dpal_official.py \
        checkpoints/dpal_vit-ti_student.pth dpal_vit-ti_authors.pth

SRC is a student written by ``extract_student.py`` or
``dpal_official_to_mmdpal.py`` (``{'state_dict': {'backbone.*'}, 'meta'}``);
DST is ``{'model': {<their ViT names>}, 'meta'}``: their loaders
(``DPALViT.init_from_pretrain`` and the like) read ``'model'`` first, strip
``backbone.`` / ``module.`` and find every tensor of their ViT
(``cls_token``, ``pos_embed``, ``patch_embed.proj``, ``blocks.N.*``,
``norm``; ``inter_norm``, which no loss of theirs reads, as weight 1 and
bias 0). The heads are not in tensors: build their model with the factory
``meta['authors_model']`` names (when the student is one of theirs).
"""
import argparse
import os
import os.path as osp
import sys

import torch

from mmdpal.models.utils.authors_checkpoint import (AuthorsCheckpointError,
                                                    mmdpal_to_authors)
from mmdpal.utils import silence_stack_deprecations


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='mmdpal student checkpoint')
    parser.add_argument('dst', help="output in the authors' names (.pth)")
    args = parser.parse_args(argv)
    if not osp.isfile(args.src):
        sys.exit(f'{osp.basename(__file__)}: {args.src!r} not found')
    try:
        ckpt = torch.load(args.src, map_location='cpu', weights_only=True)
        out, notes = mmdpal_to_authors(ckpt, args.src)
    except AuthorsCheckpointError as e:
        sys.exit(f'{osp.basename(__file__)}: {e}')
    except Exception as e:  # not a torch file, or not tensors only
        first = str(e).strip().splitlines()[0] if str(e).strip() else ''
        sys.exit(f'{osp.basename(__file__)}: {args.src!r} could not be read '
                 f'as a student checkpoint ({type(e).__name__}: '
                 f'{first[:200]}): pass the output of extract_student.py')
    for note in notes:
        print('note:', note)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(out, args.dst)
    factory = out['meta'].get('authors_model')
    print(f'wrote {len(out["model"])} tensors in the authors\' names to '
          f'{args.dst}' + (f' (their factory: {factory})' if factory else ''))


if __name__ == '__main__':
    silence_stack_deprecations()
    main()
