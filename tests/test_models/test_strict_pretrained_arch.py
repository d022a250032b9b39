"""The student's architecture travels with it: extract_student.py records
it in ``meta['arch']`` (from the config that trained it), and
mmdpal.StrictPretrained refuses a backbone it does not describe, naming
what differs and the config key, where the tensors alone would load."""
import logging
import os.path as osp
import runpy
import sys
from unittest import mock

import pytest
import torch
from mmdpal_testing import EXTRACT_STUDENT, make_student
from mmengine.registry import init_default_scope

import mmdpal  # noqa: F401
from mmdpal.models import (ArchitectureMismatchError, StrictPretrained,
                           layer_cfgs_expression)
from mmdpal.models.utils.arch import arch_differences
from mmdpal.registry import MODELS

ARCH = dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64)
# the authors' pattern at this width: more heads in the last block
AUTHORS_LAYERS = [dict()] * 3 + [dict(num_heads=4)]


class Holder(torch.nn.Module):

    def __init__(self, **backbone):
        super().__init__()
        init_default_scope('mmdpal')
        self.backbone = MODELS.build(
            dict(
                type='mmpretrain.VisionTransformer',
                arch=ARCH,
                patch_size=16,
                out_type='cls_token',
                **backbone))


def load(path, holder, **kwargs):
    StrictPretrained(checkpoint=path, prefix='backbone.', **kwargs)(holder)
    return holder


@pytest.fixture(scope='module')
def authors_like(tmp_path_factory):
    """A student pretrained with 4 heads in its last block (64x32)."""
    return make_student(
        str(tmp_path_factory.mktemp('heads')),
        arch=ARCH,
        layer_cfgs=AUTHORS_LAYERS)


def test_extract_student_records_the_architecture(authors_like):
    meta = torch.load(authors_like[0], weights_only=True)['meta']
    assert meta['arch'] == dict(
        prefix='backbone.',
        type='VisionTransformer',
        embed_dims=32,
        num_layers=4,
        num_heads=[2, 2, 2, 4],
        patch_size=[16, 16],
        pos_embed_grid=[4, 2],
        with_cls_token=True)


def test_other_heads_are_refused_naming_the_key(authors_like):
    path, state = authors_like
    with pytest.raises(ArchitectureMismatchError) as error:
        load(path, Holder(img_size=(64, 32)))
    message = str(error.value)
    assert 'holds another network than model.backbone' in message
    assert 'heads of block 4 (layers.3): checkpoint 4, model 2' in message
    assert ('set model.backbone.layer_cfgs=[dict(num_heads=2)] * 3 + '
            '[dict(num_heads=4)]') in message
    # with the layer_cfgs it names, the student loads, at another size too
    # (the grid comes from the meta: no pos_embed_grid needed)
    holder = load(path, Holder(img_size=(96, 64), layer_cfgs=AUTHORS_LAYERS))
    assert [layer.attn.num_heads
            for layer in holder.backbone.layers] == [2, 2, 2, 4]
    assert torch.equal(
        holder.backbone.state_dict()['layers.3.attn.qkv.weight'],
        state['layers.3.attn.qkv.weight'])


def test_a_file_without_architecture_loads_with_one_warning(
        authors_like, tmp_path):
    ckpt = torch.load(authors_like[0], weights_only=True)
    del ckpt['meta']['arch']
    old = str(tmp_path / 'old_student.pth')
    torch.save(ckpt, old)
    with mock.patch('mmdpal.models.utils.strict_pretrained.print_log') as log:
        load(old, Holder(img_size=(64, 32)), pos_embed_grid=(4, 2))
    warnings = [
        c for c in log.call_args_list
        if c.kwargs.get('level') == logging.WARNING
    ]
    assert len(warnings) == 1
    assert 'the heads of its blocks could not be checked' in warnings[0].args[
        0]


def test_another_grid_or_width_is_named(authors_like, tmp_path):
    path, _ = authors_like
    holder = Holder(img_size=(64, 32), layer_cfgs=AUTHORS_LAYERS)
    with pytest.raises(
            ArchitectureMismatchError,
            match=r'position grid: checkpoint 4x2, pos_embed_grid '
            r'\(8, 4\) \(model.init_cfg.pos_embed_grid'):
        load(path, holder, pos_embed_grid=(8, 4))
    wide, _ = make_student(
        str(tmp_path / 'wide'), arch=dict(ARCH, embed_dims=64))
    with pytest.raises(RuntimeError) as error:  # tensors listed, and why
        load(wide, Holder(img_size=(64, 32)))
    message = str(error.value)
    assert 'layers.0.attn.qkv.weight: checkpoint (192, 64)' in message
    assert ('width (embed_dims): checkpoint 64, model 32 '
            '(model.backbone.arch)') in message


def test_vits_are_compared_by_what_they_compute_not_by_class():
    """A ViT subclass (the official configs' ResampledPosViT) takes a
    VisionTransformer student of the same heads; other heads in it, or a
    module that is not a ViT, are named."""
    vit = dict(
        prefix='backbone.',
        type='VisionTransformer',
        embed_dims=32,
        num_layers=4,
        num_heads=[2, 2, 2, 4],
        patch_size=[16, 16])
    resampled = dict(vit, type='ResampledPosViT')
    assert arch_differences(vit, resampled) == []
    assert arch_differences(vit, dict(resampled, num_heads=[2] * 4)) == [
        'heads of block 4 (layers.3): checkpoint 4, model 2',
        'set model.backbone.layer_cfgs=[dict(num_heads=2)] * 3 + '
        '[dict(num_heads=4)]'
    ]
    swin = dict(prefix='backbone.', type='SwinTransformer')
    assert arch_differences(vit, swin) == [
        'type: checkpoint VisionTransformer, model SwinTransformer '
        '(model.backbone.type)'
    ]
    assert arch_differences(swin, dict(swin)) == []


def test_layer_cfgs_expression():
    assert layer_cfgs_expression([6] * 11 + [12]) == \
        '[dict(num_heads=6)] * 11 + [dict(num_heads=12)]'
    assert layer_cfgs_expression([3]) == '[dict(num_heads=3)]'


def extract(*argv):
    old = sys.argv
    sys.argv = [EXTRACT_STUDENT, *argv]
    try:
        runpy.run_path(EXTRACT_STUDENT, run_name='__main__')
    except SystemExit as e:
        return e.code
    finally:
        sys.argv = old


def test_extract_student_needs_the_config(authors_like, tmp_path):
    """A checkpoint without meta['cfg']: --config gives the heads, one line
    otherwise; a config that does not fit the weights is refused."""
    dpal = osp.join(osp.dirname(authors_like[0]), 'dpal_epoch_1.pth')
    ckpt = torch.load(dpal, weights_only=True)
    cfg_text = ckpt['meta'].pop('cfg')
    bare = str(tmp_path / 'bare.pth')
    torch.save(ckpt, bare)
    out = str(tmp_path / 'student.pth')
    message = extract(bare, out)
    assert '\n' not in message and '--config CONFIG' in message
    assert 'records no config' in message and not osp.exists(out)
    config = str(tmp_path / 'trained_with.py')
    with open(config, 'w') as f:
        f.write(cfg_text)
    assert extract('--config', config, bare, out) is None
    assert torch.load(
        out, weights_only=True)['meta']['arch']['num_heads'] == [2, 2, 2, 4]
    other = str(tmp_path / 'other.py')
    with open(other, 'w') as f:
        f.write(cfg_text.replace("'embed_dims': 32", "'embed_dims': 64"))
    message = extract('--config', other, bare, str(tmp_path / 'o.pth'))
    assert '\n' not in message and 'does not fit the weights' in message
