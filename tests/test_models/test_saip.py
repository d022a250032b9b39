"""SAIP: both configs build and train at tiny size; the official config
computes what the authors' code computes (saip_reference.py), loss by loss
and after one optimizer step; bad inputs fail with one line naming them."""
import math
import os.path as osp
import sys
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from mmdpal_testing import REPO
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

import mmdpal  # noqa: F401
from mmdpal.registry import MODELS

sys.path.insert(0, osp.dirname(__file__))
import saip_reference as ref  # noqa: E402

CONFIGS = {
    mode: osp.join(REPO, 'configs', 'saip', f'saip_vit-ti_lup1m{suffix}.py')
    for mode, suffix in (('paper', ''), ('official', '_official'))
}
TINY = osp.join(REPO, 'tests', 'data', 'tiny_saip.py')
# tests/data/tiny_saip.py in the reference's terms
ARCH = dict(
    patch=8,
    anchor=(8, 4),
    depth=4,
    heads=2,
    mid=1,
    csr_depth=2,
    csr_heads=2,
    css_heads=2)
B, NUM_LOCAL = 2, 3
SCALES = (0.875, 1.25)  # the draws for the last local view and the region


def tiny_cfg(mode):
    cfg = Config.fromfile(CONFIGS[mode])
    cfg.merge_from_dict(Config.fromfile(TINY).to_dict())
    return cfg


def build(mode, seed=0):
    init_default_scope('mmdpal')
    torch.manual_seed(seed)
    model = MODELS.build(tiny_cfg(mode).model)
    with mock.patch('mmengine.model.base_module.print_log'):
        model.init_weights()
    return model


def batch(seed=1):
    """inputs [g1, g2, 3 locals, multi] and paste masks (boxes of the last
    local, left, and of the anchor, right)."""
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randn(B, 3, 64, 32, generator=g) for _ in range(2)]
    inputs += [
        torch.randn(B, 3, 32, 16, generator=g) for _ in range(NUM_LOCAL)
    ]
    inputs.append(torch.randn(B, 3, 56, 56, generator=g))
    masks = torch.zeros(B, 2, 56, 56)
    masks[:, 0, 3:35, 2:18] = 1
    masks[:, 1, 20:52, 30:46] = 1
    samples = []
    for m in masks:
        ds = DataSample()
        ds.set_field(m.numpy().astype('uint8'), 'paste_masks')
        samples.append(ds)
    return inputs, samples, masks


def their_samples(inputs, masks):
    """main_pretrain.py 426-463 / 294-299: [g1, g2, locals..., region,
    multi-person, inst_mask (the region's box), roi_mask (last crop's)]."""
    g1, g2, *locals_, multi = inputs
    region = F.interpolate(g1, size=locals_[-1].shape[-2:])
    return [g1, g2, *locals_, region, multi, masks[:, 1], masks[:, 0]]


def perturb_teacher(model, seed=3):
    """A teacher that differs from the student (as after some EMA steps),
    so that the attention term is not 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.teacher.update_parameters(model._teachable())  # steps 0: copy
        for p in model.teacher.module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def params_dict(model):
    d = {k: v for k, v in model.named_parameters()}
    d.update({
        k: v
        for k, v in model.teacher.module.named_parameters(
            prefix='teacher.module')
    })
    return d


def our_loss(model, inputs, samples):
    with mock.patch(
            'mmdpal.models.algorithms.saip.random.choice',
            side_effect=list(SCALES)), \
            mock.patch.object(model.teacher, 'update_parameters'):
        torch.manual_seed(7)  # the CSR mask noise
        return model.loss(inputs, samples)


def reference_loss(p, inputs, masks, center):
    torch.manual_seed(7)
    return ref.total_loss(
        their_samples(inputs, masks), p, ARCH, SCALES, center)


@pytest.mark.parametrize('mode', ['paper', 'official'])
def test_configs_build_and_every_parameter_gets_a_gradient(mode):
    model = build(mode)
    inputs, samples, _ = batch()
    losses = model.loss(inputs, samples)
    expected = {'loss_csm', 'loss_csr', 'loss_css_anchor', 'loss_css_local'}
    if mode == 'official':
        expected.add('loss_attn')
    assert set(losses) == expected
    assert all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())
    sum(losses.values()).backward()
    assert [
        n for n, p in model.named_parameters()
        if p.requires_grad and p.grad is None
    ] == []
    assert not any(p.requires_grad for p in model.teacher.parameters())


def test_official_losses_equal_the_reference():
    model = build('official')
    perturb_teacher(model)
    inputs, samples, masks = batch()
    center = model.csm_loss.center.clone() + 0.01
    model.csm_loss.center.copy_(center)
    ours = our_loss(model, inputs, samples)
    theirs, their_center = reference_loss(
        params_dict(model), inputs, masks, center)
    pairs = dict(
        loss_csm='csm_rep_loss',
        loss_attn='csm_att_loss',
        loss_csr='csr_loss',
        loss_css_anchor='css_inst_loss',
        loss_css_local='css_roi_loss')
    assert theirs['csm_att_loss'] > 1e-4  # the term is really exercised
    for k, t in pairs.items():
        torch.testing.assert_close(ours[k], theirs[t], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        model.csm_loss.center, their_center, rtol=1e-5, atol=1e-7)


def test_official_optimizer_step_equals_the_reference():
    """One update of AdamW (0.9, 0.95), weight decay 0.05 except on 1-D
    parameters (timm's add_weight_decay), from the official config.

    In float64: Adam's first step is lr * g / (|g| + eps), which turns the
    float32 round-off of a tiny gradient (e.g. 1e-9 on a 7e-7 element, or
    the key bias, whose true gradient is 0) into update differences of up to
    ~lr; in float64 round-off stays far below eps (the float32 gradients
    agree to 3.5e-6 of each tensor's largest)."""
    model = build('official').double()
    perturb_teacher(model)
    inputs, samples, masks = batch()
    inputs, masks = [i.double() for i in inputs], masks.double()
    lr = 1e-3
    # theirs: every trainable tensor of the student, two groups
    p = {k: v.detach().clone() for k, v in params_dict(model).items()}
    student = {
        k: v.requires_grad_()
        for k, v in p.items() if not k.startswith('teacher.')
    }
    their_opt = torch.optim.AdamW([
        dict(
            params=[v for v in student.values() if v.ndim <= 1],
            weight_decay=0.),
        dict(
            params=[v for v in student.values() if v.ndim > 1],
            weight_decay=0.05)
    ],
                                  lr=lr,
                                  betas=(0.9, 0.95))
    theirs, _ = reference_loss(p, inputs, masks, model.csm_loss.center)
    sum(theirs.values()).backward()
    their_opt.step()

    cfg = tiny_cfg('official').optim_wrapper
    # fp16 AMP and accumulation left out here (CPU, one update)
    cfg = dict(
        type='OptimWrapper',
        optimizer=dict(cfg.optimizer, lr=lr),
        paramwise_cfg=cfg.paramwise_cfg)
    optim = build_optim_wrapper(model, cfg)
    optim.update_params(sum(our_loss(model, inputs, samples).values()))
    ours = {k: v for k, v in model.named_parameters() if v.requires_grad}
    assert set(ours) == set(student)
    for k, v in ours.items():
        # 6e-12 measured (the key biases' round-off, see above)
        torch.testing.assert_close(
            v, student[k].detach(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('index', ['iter', 'iter_in_epoch'])
def test_teacher_is_a_cosine_ema_updated_in_every_loss(index):
    """First loss(): the teacher becomes the student; each later one:
    teacher = (1 - m) teacher + m student, m = 0.004 (cos(pi k / T) + 1) / 2
    at k = the update count (within the epoch for 'iter_in_epoch')."""
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('test_saip_ema')
    hub.update_info('max_iters', 30)
    hub.update_info('max_epochs', 3)  # 10 iterations an epoch
    cfg = tiny_cfg('official')
    cfg.model.teacher_momentum_index = index
    init_default_scope('mmdpal')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    inputs, samples, _ = batch()
    optim = torch.optim.SGD(model.parameters(), lr=0.1)
    teacher = model.teacher.module['backbone'].pos_embed
    for k in range(12):  # k = the teacher's update count
        before = teacher.detach().clone()
        model.loss(inputs, samples)
        student = model.backbone.pos_embed.detach()
        if k == 0:
            torch.testing.assert_close(teacher, student)
        else:
            i = k % 10 if index == 'iter_in_epoch' else k
            m = 0.004 * (math.cos(math.pi * i / 30) + 1) / 2
            torch.testing.assert_close(teacher, (1 - m) * before + m * student)
        optim.zero_grad()
        model.backbone.pos_embed.grad = torch.randn_like(student)
        optim.step()


def test_paper_mode_differs_by_its_keys():
    """Paper mode: no attention term, L2 on the mask probabilities, a CSR
    decoder that cross-attends the anchor's patches."""
    paper, official = tiny_cfg('paper').model, tiny_cfg('official').model
    assert paper.get('attention_loss') is None
    assert official.attention_loss.type == 'AttentionKLLoss'
    diff = {
        k
        for k in set(paper) | set(official) if paper.get(k) != official.get(k)
    }
    assert diff == {
        'attention_loss', 'css_loss', 'csr_decoder', 'pos_embed_resize',
        'teacher_momentum_index'
    }
    assert (paper.css_loss.mode, official.css_loss.mode) == ('l2', 'bce')
    logits, mask = torch.randn(2, 49), (torch.rand(2, 49) > .5).float()
    l2 = MODELS.build(dict(type='CSSLoss', mode='l2'))(logits, mask)
    torch.testing.assert_close(l2, ((logits.sigmoid() - mask)**2).mean())
    assert 'loss_attn' not in build('paper').loss(*batch()[:2])


@pytest.mark.parametrize('anchor_tokens', ['patches', 'cls_token'])
def test_csr_decoder_sees_what_anchor_tokens_says(anchor_tokens):
    init_default_scope('mmdpal')
    torch.manual_seed(0)
    dec = MODELS.build(
        dict(
            type='CSRDecoder',
            in_dims=8,
            num_patches=8,
            patch_size=2,
            dims=8,
            depth=1,
            num_heads=2,
            anchor_tokens=anchor_tokens))
    anchor, visible = torch.randn(2, 9, 8), torch.randn(2, 4, 8)
    ids_restore = torch.randperm(10).expand(2, -1)
    out = dec(anchor, visible, ids_restore)
    assert out.shape == (2, 10, 12)
    other = anchor.clone()
    other[:, 1:] += 1  # other patch tokens, same class token
    same = torch.allclose(out, dec(other, visible, ids_restore))
    assert same == (anchor_tokens == 'cls_token')


def test_anchor_mask_keeps_the_anchor_ratio():
    from mmdpal.models.algorithms.saip import anchor_mask
    noise = torch.rand(3, 32)
    keep, ids_restore, removed = anchor_mask(noise, (8, 4), (10, 5), 0.75)
    assert keep.shape == (3, 12) and ids_restore.shape == (3, 50)
    assert removed.shape == (3, 50)
    assert set(removed.unique().tolist()) <= {0., 1.}


@pytest.mark.parametrize('change, match', [
    (lambda i, s: (i[:3], s), 'at least 4 views'),
    (lambda i, s: ([i[0], i[1][..., :16]] + i[2:], s), 'global views'),
    (lambda i, s: (i[:2] + [i[2][..., :8]] + i[3:], s), 'local views differ'),
    (lambda i, s: (i, [DataSample() for _ in s]), 'paste_masks'),
    (lambda i, s: (i[:-1] + [i[-1][..., :48, :48]], s), 'do not fit'),
])
def test_bad_inputs_fail_with_one_line(change, match):
    model = build('paper')
    inputs, samples, _ = batch()
    with pytest.raises(ValueError, match=match) as err:
        model.loss(*change(inputs, samples))
    assert '\n' not in str(err.value)


@pytest.mark.parametrize('key, value, match', [
    ('mid_layer', 4, 'SAIP.mid_layer=4'),
    ('mask_ratio', 1.0, 'SAIP.mask_ratio=1.0'),
    ('pos_embed_resize', 'bilinear', 'SAIP.pos_embed_resize'),
    ('backbone.with_cls_token', False, 'class token'),
    ('css_loss.mode', 'dice', 'CSSLoss.mode'),
    ('teacher_momentum_index', 'epoch', 'SAIP.teacher_momentum_index'),
    ('csr_decoder.num_heads', 3, 'CSRDecoder.num_heads=3'),
])
def test_bad_options_fail_at_build(key, value, match):
    cfg = tiny_cfg('paper')
    cfg.merge_from_dict({'model.' + key: value})
    if key == 'backbone.with_cls_token':
        cfg.model.backbone.out_type = 'featmap'
    init_default_scope('mmdpal')
    with pytest.raises(ValueError, match=match) as err:
        MODELS.build(cfg.model)
    assert '\n' not in str(err.value)


@pytest.mark.parametrize('mode', ['paper', 'official'])
def test_real_size_views_one_loss(mode):
    """The configs at their real size (ViT-Ti, K = 65536) on one sample of
    the README's views: 256x128, 7 crops 128x64, 224x224; every scale of
    the CSM draws (0.875 gives 112x56, a 7x3 grid)."""
    init_default_scope('mmdpal')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(CONFIGS[mode]).model)
    inputs = [torch.randn(1, 3, 256, 128) for _ in range(2)]
    inputs += [torch.randn(1, 3, 128, 64) for _ in range(7)]
    inputs.append(torch.randn(1, 3, 224, 224))
    masks = torch.zeros(2, 224, 224)
    masks[0, 10:138, 20:84] = masks[1, 50:178, 130:194] = 1
    samples = [DataSample(paste_masks=masks)]
    with mock.patch(
            'mmdpal.models.algorithms.saip.random.choice',
            side_effect=[0.875, 1.125]), torch.no_grad():
        losses = model.loss(inputs, samples)
    assert all(torch.isfinite(v) for v in losses.values())
    # 18 CE pairs of uniform-ish 65536-way distributions: about log K
    assert 0.5 * math.log(65536) < losses['loss_csm'] < 2 * math.log(65536)


def test_readme_recipe():
    cfg = Config.fromfile(CONFIGS['paper'])
    assert cfg.train_cfg.max_epochs == 300
    assert cfg.optim_wrapper.accumulative_counts == 4
    # lr per image of one update: 2.5e-4 / 256 with 4 batches an update
    assert cfg.optim_wrapper.optimizer.lr / cfg.auto_scale_lr.base_batch_size \
        == pytest.approx(2.5e-4 * 4 / 256)
    assert cfg.train_dataloader.batch_size == 64
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.05
    assert cfg.param_scheduler[0].end == 10
    assert cfg.model.backbone.img_size == (256, 128)
    official = Config.fromfile(CONFIGS['official'])
    assert official.optim_wrapper.optimizer.betas == (0.9, 0.95)
