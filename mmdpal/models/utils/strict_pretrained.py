"""Strict loading of a pretrained DPAL student into a downstream model.

mmengine's ``Pretrained`` initializer loads with ``strict=False`` and only
warns about missing, unexpected or mis-shaped keys, so a checkpoint of another
architecture silently leaves a randomly initialized backbone. It also cannot
load the DPAL student into ``mmpretrain.VisionTransformer`` at all: the
student's position embedding has a class-token slot and a 16x8 grid (256x128
input), and the ViT's own load hook only understands square grids.
``StrictPretrained`` loads the backbone part of a checkpoint, resizes the
position embedding, and fails with the full list of mismatches. Tensor shapes
do not give the heads of a block: the architecture recorded in the
checkpoint's ``meta['arch']`` (``arch.py``) is compared with the backbone's
first, so that a student with 12 heads in its last block is not fine-tuned
as a 6-head network.
"""
import logging
import os.path as osp
import pickle
import re
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import update_init_info
from mmengine.runner.checkpoint import CheckpointLoader
from mmpretrain.models.utils import resize_pos_embed

from mmdpal.registry import WEIGHT_INITIALIZERS
from mmdpal.utils.checkpoint import unpickling_refusal
from mmdpal.utils.options import check_choice
from .arch import arch_differences, backbone_arch, recorded_arch
from .state_dict import check_state_dict_fits, pos_embed_layout
from .vit_tokens import resample_sequence_1d

# how a checkpoint's pos_embed is resized to the model's grid at loading
POS_EMBED_LOAD_RESIZES = ('grid', 'sequence_1d_bilinear')


class ArchitectureMismatchError(ValueError):
    """The student in a checkpoint is another network than the config's
    backbone (its ``meta['arch']`` differs), printed as written."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


@WEIGHT_INITIALIZERS.register_module()
class StrictPretrained:
    """Initialize one part of a model (e.g. the backbone) from a checkpoint,
    strictly.

    Set it as the ``init_cfg`` of the whole model, not of the backbone::

        model = dict(
            init_cfg=dict(
                type='mmdpal.StrictPretrained',
                checkpoint='checkpoints/dpal_vit-ti_student.pth',
                prefix='backbone.',
                pos_embed_grid=(16, 8),
                unused_keys=['cls_token']),
            backbone=dict(type='mmpretrain.VisionTransformer', ...,
                          init_cfg=None))

    The architecture the checkpoint records in ``meta['arch']`` (width,
    depth, heads of every block, patch size; written by
    ``tools/model_converters/extract_student.py`` and
    ``dpal_official_to_mmdpal.py``) must be the backbone's: a difference,
    e.g. 12 heads in the last block against 6, raises
    :class:`ArchitectureMismatchError` naming it and the config key to change
    (``model.backbone.layer_cfgs``). A checkpoint without it loads with one
    warning that the heads could not be checked.
    The checkpoint's tensors under ``prefix`` (``backbone.*``, as written by
    ``tools/model_converters/extract_student.py``) must match the model's
    parameters and buffers under the same prefix one to one: any missing,
    unexpected or mis-shaped key raises one error that lists them all. Only
    the keys in ``unused_keys`` may be left over, and only when the model has
    no such parameter (the class token of a ViT fine-tuned without one).
    A ``pos_embed`` is resized first: its class-token slot is dropped when the
    model has none, and its ``pos_embed_grid`` is resized to the model's
    patch grid (``pos_embed_resize``).

    Why on the model and not on the backbone: mmengine applies an init_cfg
    whose type is not exactly ``'Pretrained'`` *before* the children's
    ``init_weights`` (which re-draw the ViT's FFN weights), and
    ``mmpretrain.VisionTransformer`` re-draws its ``pos_embed`` after loading
    unless its own init_cfg type is ``'Pretrained'``. Working from the parent,
    this initializer loads the part and marks it initialized (``is_init``),
    so that mmengine skips that part's ``init_weights`` altogether.

    Args:
        checkpoint (str): Path (or URL) of the checkpoint.
        prefix (str): The part of the model to load, with a trailing dot,
            e.g. ``'backbone.'``; the checkpoint keys under it are used.
            Defaults to ``'backbone.'``.
        pos_embed_grid (tuple[int, int], optional): ``(rows, cols)`` of the
            patch grid the checkpoint's ``pos_embed`` was trained on, e.g.
            ``(16, 8)`` for 256x128 images and 16-pixel patches. A
            checkpoint that records its grid (``meta['arch']``) is resized
            from that one, and another value here is an error; without the
            record, None means square. Defaults to None.
        unused_keys (Sequence[str]): Checkpoint keys (relative to ``prefix``)
            that may be left unused because the model has no such tensor.
            Defaults to ().
        new_keys (Sequence[str]): Model keys (relative to ``prefix``; one
            ending with a dot names every key under it, e.g.
            ``'tap_norms.'``) that the checkpoint may lack: tensors a
            pretrained student has no counterpart for, left as the model
            built them (e.g. the new LayerNorms of
            ``ResampledPosViT(tap_norm='replace')``: weight 1, bias 0, as
            the authors' ``_init_weights``). Each must name a model tensor.
            Defaults to ().
        pos_embed_resize (str): How a ``pos_embed`` of another grid is
            resized to the model's: ``'grid'`` (2-D on the grid, with the
            model's ``interpolate_mode``, bicubic for mmpretrain's ViT) or
            ``'sequence_1d_bilinear'`` (the authors' LIP loader,
            HumanParsing/networks/vision_transformer.py
            ``VisionTransformerHP.init_weights``: the patch positions as one
            flat sequence, bilinear, e.g. 16x8 = 128 -> 14x14 = 196, the
            class slot kept; ``vit_tokens.resample_sequence_1d``).
            Defaults to ``'grid'``.
        map_location (str): Where to load the tensors. Defaults to 'cpu'.
    """

    def __init__(self,
                 checkpoint: str,
                 prefix: str = 'backbone.',
                 pos_embed_grid: Optional[Tuple[int, int]] = None,
                 unused_keys: Sequence[str] = (),
                 new_keys: Sequence[str] = (),
                 pos_embed_resize: str = 'grid',
                 map_location: str = 'cpu') -> None:
        if not prefix or not prefix.endswith('.'):
            raise ValueError(
                f'prefix must name a part of the model and end with a dot, '
                f'e.g. "backbone.", got {prefix!r}')
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.pos_embed_grid = (
            tuple(pos_embed_grid) if pos_embed_grid is not None else None)
        self.unused_keys = tuple(unused_keys)
        self.new_keys = tuple(new_keys)
        check_choice('StrictPretrained pos_embed_resize', pos_embed_resize,
                     POS_EMBED_LOAD_RESIZES)
        self.pos_embed_resize = pos_embed_resize
        self.map_location = map_location

    def __call__(self, module: torch.nn.Module) -> None:
        name = self.prefix[:-1]
        try:
            target = module.get_submodule(name)
        except AttributeError:
            raise KeyError(
                f'StrictPretrained: the model has no part named {name!r} '
                f'(prefix {self.prefix!r}); its parts are '
                f'{[n for n, _ in module.named_children()]}. Set '
                'StrictPretrained as the init_cfg of the whole model, not of '
                'the part it loads') from None

        ckpt = self._load()
        state = self._part(ckpt)
        differences, grid = self._compare_arch(
            recorded_arch(ckpt.get('meta'), self.prefix), target)
        unused = [
            k for k in self.unused_keys
            if k in state and k not in target.state_dict()
        ]
        for key in unused:
            state.pop(key)
        resized = self._fit_pos_embeds(state, target, grid)
        new = self._add_new_keys(state, target)
        self._check(state, target, differences)
        if differences:  # the tensors fit, the network differs (heads)
            self._refuse_arch(differences, target)
        target.load_state_dict(state, strict=True)
        if isinstance(target, BaseModule):
            # mmengine then skips target.init_weights(), which would re-draw
            # what was just loaded.
            target._is_init = True

        print_log(
            self._loaded_message(state, unused, resized, new),
            logger='current',
            level=logging.INFO)
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())

    def _load(self) -> dict:
        """The checkpoint, tensors and plain types only."""
        if '://' not in self.checkpoint and not osp.isfile(self.checkpoint):
            raise FileNotFoundError(
                f'StrictPretrained: checkpoint {self.checkpoint!r} not found. '
                'Write it with tools/model_converters/extract_student.py '
                '(from a DPAL checkpoint) and pass it with --cfg-options '
                'model.init_cfg.checkpoint=PATH')
        try:
            ckpt = CheckpointLoader.load_checkpoint(
                self.checkpoint, map_location=self.map_location)
        except pickle.UnpicklingError as e:
            raise ValueError(
                f'StrictPretrained: checkpoint {self.checkpoint!r} holds '
                f'{unpickling_refusal(e)}, not only tensors and containers: '
                "a checkpoint of the authors' pretraining script? Convert "
                'it with tools/model_converters/dpal_official_to_mmdpal.py'
            ) from None
        return ckpt if isinstance(ckpt, dict) else {}

    def _part(self, ckpt: dict) -> 'OrderedDict[str, torch.Tensor]':
        """The checkpoint's tensors under ``prefix``, without the prefix."""
        state = ckpt.get('state_dict', ckpt)
        part = OrderedDict((k[len(self.prefix):], v) for k, v in state.items()
                           if k.startswith(self.prefix))
        if not part:
            authors = any(
                re.search(r'(^|\.)blocks\.\d+\.attn\.qkv\.', k)
                for k in state) or {'student', 'teacher'} <= set(state)
            hint = ("it is in the names of the authors' code: convert it "
                    'with tools/model_converters/dpal_official_to_mmdpal.py'
                    ) if authors else (
                        'pass the output of '
                        'tools/model_converters/extract_student.py')
            raise KeyError(
                f'StrictPretrained: checkpoint {self.checkpoint!r} has no '
                f'"{self.prefix}*" keys (found e.g. {list(state)[:5]}); '
                f'{hint}')
        return part

    def _compare_arch(
        self, arch: Optional[dict], target: torch.nn.Module
    ) -> Tuple[List[str], Optional[Tuple[int, int]]]:
        """What differs between the recorded architecture and the model's
        part (one line each, with the config key), and the position grid of
        the checkpoint (``pos_embed_grid``, else the recorded one)."""
        if arch is None:
            print_log(
                f'StrictPretrained: {self.checkpoint} records no '
                "architecture (meta['arch']), so the heads of its blocks "
                f'could not be checked against model.{self.prefix[:-1]}: '
                'its tensors fit a backbone of any heads. Re-export it with '
                'tools/model_converters/extract_student.py (or '
                'dpal_official_to_mmdpal.py) to have them checked.',
                logger='current',
                level=logging.WARNING)
            return [], self.pos_embed_grid
        lines = arch_differences(arch, backbone_arch(target, self.prefix),
                                 self.prefix[:-1])
        recorded_grid = arch.get('pos_embed_grid')
        recorded_grid = tuple(recorded_grid) if recorded_grid else None
        if (self.pos_embed_grid and recorded_grid
                and self.pos_embed_grid != recorded_grid):
            lines.append(
                f'position grid: checkpoint {recorded_grid[0]}x'
                f'{recorded_grid[1]}, pos_embed_grid {self.pos_embed_grid} '
                '(model.init_cfg.pos_embed_grid: set it to '
                f'{recorded_grid} or leave it out)')
        return lines, recorded_grid or self.pos_embed_grid

    def _refuse_arch(self, differences: List[str],
                     target: torch.nn.Module) -> None:
        # one line: the differences, then the config key that fixes them
        raise ArchitectureMismatchError(
            f'StrictPretrained: checkpoint {self.checkpoint!r} holds another '
            f'network than model.{self.prefix[:-1]} '
            f'({type(target).__name__}), by its meta["arch"]: ' +
            '; '.join(differences))

    def _fit_pos_embeds(self, state: dict, target: torch.nn.Module,
                        grid: Optional[Tuple[int, int]]) -> list:
        """Resize every ``*pos_embed`` of ``state`` to the model's one.

        Returns:
            list[str]: One description per resized key, for the log.
        """
        expected = target.state_dict()
        resized = []
        for key in list(state):
            if not (key == 'pos_embed' or key.endswith('.pos_embed')):
                continue
            if key not in expected or state[key].shape == expected[key].shape:
                continue
            src = state[key]
            owner = target if key == 'pos_embed' else target.get_submodule(
                key[:-len('.pos_embed')])
            dst_grid = tuple(getattr(owner, 'patch_resolution', ()))
            dst_extra = getattr(owner, 'num_extra_tokens', 0)
            if (src.ndim != 3 or src.shape[-1] != expected[key].shape[-1]
                    or len(dst_grid) != 2):
                continue  # reported as a shape mismatch by _check
            length = src.shape[1]
            try:
                src_extra, src_grid = pos_embed_layout(length, grid)
            except ValueError as e:
                raise ValueError(
                    f'StrictPretrained: {self.prefix}{key} of '
                    f'{self.checkpoint!r}: {e} (pos_embed_grid; model: '
                    f'{dst_extra} extra tokens + {dst_grid[0]}x{dst_grid[1]})'
                ) from None
            if dst_extra > src_extra:
                raise ValueError(
                    f'StrictPretrained: {self.prefix}{key} of '
                    f'{self.checkpoint!r} has no class-token slot but the '
                    f'model needs {dst_extra}')
            if self.pos_embed_resize == 'sequence_1d_bilinear':
                how = ' (as one 1-D sequence, bilinear)'
                patches = resample_sequence_1d(
                    src[:, src_extra:],
                    0,
                    dst_grid[0] * dst_grid[1],
                    mode='bilinear')
            else:
                how = ''
                patches = resize_pos_embed(
                    src[:, src_extra:],
                    src_grid,
                    dst_grid,
                    mode=getattr(owner, 'interpolate_mode', 'bicubic'),
                    num_extra_tokens=0)
            state[key] = torch.cat([src[:, :dst_extra], patches], dim=1)
            resized.append(
                f'{key}: {src_extra} extra + {src_grid[0]}x{src_grid[1]} -> '
                f'{dst_extra} extra + {dst_grid[0]}x{dst_grid[1]}{how}')
        return resized

    def _add_new_keys(self, state: dict, target: torch.nn.Module) -> list:
        """Put the model's own tensors named by ``new_keys`` that the
        checkpoint lacks into ``state``.

        Returns:
            list[str]: Their keys, for the log.
        """
        expected = target.state_dict()
        new = []
        for name in self.new_keys:
            keys = [
                k for k in expected
                if k == name or (name.endswith('.') and k.startswith(name))
            ]
            if not keys:
                raise KeyError(
                    f'StrictPretrained: new_keys entry {name!r} names no '
                    f'tensor of model.{self.prefix[:-1]} '
                    f'({type(target).__name__}); a key, or a module name '
                    f'ending with a dot, e.g. {list(expected)[:3]}')
            for key in keys:
                if key not in state:
                    state[key] = expected[key].detach().clone()
                    new.append(key)
        return new

    def _check(self, state: dict, target: torch.nn.Module,
               differences: Sequence[str]) -> None:
        """Raise one error listing every key that does not fit (and what
        the recorded architecture says differs)."""
        hint = ('Check that the backbone in the config is the architecture '
                'the student was pretrained with, and that the checkpoint '
                'was written by tools/model_converters/extract_student.py.')
        if differences:
            hint = '\n'.join(['Its meta["arch"] against the config:'] +
                             [f'  {line}' for line in differences] + [hint])
        check_state_dict_fits(
            state,
            target.state_dict(),
            what=(f'StrictPretrained: checkpoint {self.checkpoint!r} does not '
                  f'fit model.{self.prefix[:-1]} ({type(target).__name__}); '
                  f'keys relative to {self.prefix!r}'),
            hint=hint,
            allowed_unused=self.unused_keys)

    def _loaded_message(self, state: dict, unused: list, resized: list,
                        new: list) -> str:
        groups = OrderedDict()
        loaded = [k for k in state if k not in new]
        for key in loaded:
            group = re.sub(r'\.\d+\.', '.*.', key, count=1)
            groups[group] = groups.get(group, 0) + 1
        names = ', '.join(g if n == 1 else f'{g} (x{n})'
                          for g, n in groups.items())
        lines = [
            f'StrictPretrained: loaded all {len(loaded)} tensors of '
            f'model.{self.prefix[:-1]} from {self.checkpoint} '
            f'(keys "{self.prefix}*"): {names}'
        ]
        if resized:
            lines.append(f'  resized: {"; ".join(resized)}')
        if unused:
            lines.append(f'  in the checkpoint, unused by the model (as '
                         f'expected): {", ".join(unused)}')
        if new:
            lines.append(f'  not in the checkpoint, kept as built (new_keys): '
                         f'{", ".join(new)}')
        return '\n'.join(lines)

    def _get_init_info(self) -> str:
        return (f'{self.__class__.__name__}: {self.prefix}* from '
                f'{self.checkpoint}')
