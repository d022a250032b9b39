"""Write the list file of a seeded random subset of LUPerson (e.g. LUP1M).

    python tools/dataset_converters/make_lup_subset.py data/LUPerson/images \
        data/LUPerson/lup1m.txt --num 1000000 --seed 0

Every image under the folder is listed (recursively, sorted), ``--num`` of
them are drawn without replacement with ``--seed``, and their paths relative
to the folder are written one per line, sorted. The same folder, number and
seed always give the same file. LUPersonDataset reads it as ``ann_file``.
"""
import argparse
import os
import os.path as osp

import numpy as np

from mmdpal.datasets import scan_images
from mmdpal.utils import silence_stack_deprecations


def make_subset(folder: str, num: int, seed: int):
    if not osp.isdir(folder):
        raise FileNotFoundError(f'LUPerson image folder not found: {folder!r}')
    names = scan_images(folder)
    if not names:
        raise ValueError(f'no images under {folder!r}')
    if num > len(names):
        raise ValueError(f'--num {num} is larger than the {len(names)} '
                         f'images under {folder!r}')
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(names), size=num, replace=False)
    return sorted(names[i] for i in picked)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('folder', help='LUPerson image folder')
    parser.add_argument('out', help='list file to write')
    parser.add_argument('--num', type=int, default=1_000_000)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    subset = make_subset(args.folder, args.num, args.seed)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        f.write('\n'.join(subset) + '\n')
    print(f'wrote {len(subset)} of the images under {args.folder} to '
          f'{args.out} (seed {args.seed})')


if __name__ == '__main__':
    silence_stack_deprecations()
    main()
