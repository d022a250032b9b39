"""DDP without ``find_unused_parameters``: every trainable parameter of each
pretraining variant (Table 6, the authors' settings, Table 3's loss
ablations, Table 11's decoders, the Table 1 rivals of configs/rivals)
receives a gradient from one training step, or the config sets
``find_unused_parameters=True``.

DDP with ``find_unused_parameters=False`` (mmengine's default, and the
fast one) stops with "Expected to have finished reduction in the prior
iteration" when a parameter gets no gradient; with True it scans the graph
every step. The check is generic: each config's model is built at a tiny
size and the parameters left with ``grad is None`` after one backward of
the summed losses are listed.
"""
import glob
import os.path as osp

import pytest
import torch
from mmdpal_testing import REPO, TINY_TEACHER_ARCH, save_tiny_teacher
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdpal.registry import MODELS

CONFIGS = [
    osp.join(REPO, 'configs', 'dpal', 'vit-ti_path-b_lup1m.py'),
    osp.join(REPO, 'configs', 'dpal', 'vit-ti_path-b_lup1m_official.py'),
] + sorted(glob.glob(osp.join(
    REPO, 'configs', 'dpal', 'ablations', '*.py'))) + sorted(
        glob.glob(osp.join(REPO, 'configs', 'rivals', '*.py')))


def tiny_model(config, teacher):
    """The config's model with a 32-dim student, a 48-dim teacher and the
    decoder's (or the rival's projector's) widths and heads scaled to
    them."""
    cfg = Config.fromfile(config)
    model = cfg.model
    model.backbone.update(
        arch=dict(
            embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
        img_size=(64, 32),
        patch_size=8)
    model.teacher.backbone.update(
        arch=TINY_TEACHER_ARCH, img_size=(64, 32), patch_size=8)
    model.teacher.checkpoint = teacher
    if 'decoder' in model:
        decoder = model.decoder
        decoder.update(in_dims=32, out_dims=48)
        if 'num_heads' in decoder:
            heads = decoder.num_heads
            decoder.num_heads = {
                k: 2
                for k in heads
            } if isinstance(heads, dict) else 2
    elif model.type == 'TinyMIMDistiller':  # last block: teacher's heads
        model.backbone.update(
            arch=dict(model.backbone.arch, embed_dims=48),
            layer_cfgs=[
                dict(), dict(num_heads=TINY_TEACHER_ARCH['num_heads'])
            ])
    else:  # a Table 1 rival (configs/rivals): its projector's widths
        model.update(student_dims=32, teacher_dims=48)
        if 'mimic_layers' in model:  # ViTKD: the tiny ViTs have 2 blocks
            model.mimic_layers = (0, )
    init_default_scope('mmdpal')
    return cfg, MODELS.build(model)


@pytest.fixture(scope='module')
def teacher(tmp_path_factory):
    return save_tiny_teacher(
        str(tmp_path_factory.mktemp('teacher') / 'teacher.pth'))


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: osp.basename(p)[:-3])
def test_every_parameter_gets_a_gradient_or_config_says_so(config, teacher):
    cfg, model = tiny_model(config, teacher)
    model.train()
    torch.manual_seed(0)
    inputs = [
        torch.randn(2, 3, 64, 32),  # global view
        torch.randn(2, 3, 32, 24),  # two local views
        torch.randn(2, 3, 32, 24),
        torch.randn(2, 3, 64, 64),  # copy-paste multi-person view
    ]
    losses = model.loss(inputs, [])
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    total.backward()
    trainable = [(n, p) for n, p in model.named_parameters()
                 if p.requires_grad]
    assert trainable and not any(
        n.startswith('teacher.') for n, _ in trainable)
    unused = [n for n, p in trainable if p.grad is None]
    find_unused = cfg.get('find_unused_parameters', False)
    assert bool(unused) == find_unused, (
        f'{osp.basename(config)}: find_unused_parameters={find_unused} but '
        f'parameters without a gradient: {unused}')


SAIP_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'saip', '*.py')))


@pytest.mark.parametrize(
    'config', SAIP_CONFIGS, ids=lambda p: osp.basename(p)[:-3])
def test_saip_every_parameter_gets_a_gradient_or_config_says_so(config):
    """The same rule for the SAIP configs (tests/data/tiny_saip.py size);
    its teacher is an EMA, never trained."""
    from mmpretrain.structures import DataSample
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(
        Config.fromfile(osp.join(REPO, 'tests', 'data',
                                 'tiny_saip.py')).to_dict())
    init_default_scope('mmdpal')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    inputs = [torch.randn(2, 3, 64, 32) for _ in range(2)]  # globals
    inputs += [torch.randn(2, 3, 32, 16) for _ in range(3)]  # locals
    inputs.append(torch.randn(2, 3, 56, 56))  # multi-person
    samples = []
    for _ in range(2):
        masks = torch.zeros(2, 56, 56)
        masks[0, :32, :16] = masks[1, 8:40, 30:46] = 1
        samples.append(DataSample(paste_masks=masks))
    sum(model.loss(inputs, samples).values()).backward()
    trainable = [(n, p) for n, p in model.named_parameters()
                 if p.requires_grad]
    assert trainable and not any(
        n.startswith('teacher.') for n, _ in trainable)
    unused = [n for n, p in trainable if p.grad is None]
    find_unused = cfg.get('find_unused_parameters', False)
    assert bool(unused) == find_unused, (
        f'{osp.basename(config)}: find_unused_parameters={find_unused} but '
        f'parameters without a gradient: {unused}')
