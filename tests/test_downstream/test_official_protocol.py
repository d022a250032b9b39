"""The authors' downstream protocol (configs/downstream/*/*_official.py) is
theirs: the modules that stock mmpose / mmdet cannot express give, on the
same weights and inputs, what the authors' code computes, written here step
by step from the facts of their code (stoa-xh91/
Human-centric-Vision-Perception: pose-estimation/mmpose/models/backbones/
vit.py, person_detection/mmdet/models/backbones/vision_transformer.py, and
mmpose's layer_decay_optim_wrapper.py that their fork ships unchanged); and
every key in which an official config differs from ours is a row of
docs/downstream.md.

Their facts used below:

- pose ViT: ``Conv2d(3, C, 16, stride=16, padding=2)``; the class token
  first; ``pos_embed`` of 1 + (256 // 16) * (128 // 16) = 1 + 128 slots
  (their ``img_size=(256, 128)``; Human-Art / CrowdPose: ``(224, 224)``,
  1 + 14 * 14, the checkpoint's 16x8 resized by ``resize_pos_embed``, 2-D
  bicubic, at loading); in every forward ``interpolate_pos_encoding``
  resizes the patch part as a (1, C, N, 1) image to (L, 1), bicubic
  (align_corners False), the class slot kept; pre-norm blocks (LayerNorm eps
  1e-6, qkv with bias, softmax(q k^T * head_dim ** -0.5), proj; fc1, exact
  GELU, fc2), ``num_heads_in_last_block=12``; a final LayerNorm (eps 1e-6)
  on every token; the patch tokens as a (B, C, h, w) map.
- detection ViT: the same blocks with ``nn.LayerNorm``'s eps 1e-5, no
  padding, ``pos_embed`` of 1 + 128 slots resized in every forward by DINO's
  ``scale_factor=(h + 0.1) / 16, (w + 0.1) / 8`` (bicubic); then ``up0``
  (2x2 stride-2 deconvolution C -> C/2, BatchNorm, GELU, 2x2 stride-2
  deconvolution C/2 -> C/4), ``up1`` (2x2 stride-2 deconvolution C -> C/2),
  the map, ``down2`` (3x3 stride-2 convolution, padding 1).
- layer decay: mmpose's ``get_num_layer_for_vit`` reads blocks from names
  ``backbone.layers.N``; theirs are ``backbone.blocks.N``.
"""
import glob
import math
import os.path as osp
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdpal_testing import REPO, build_with_student, cubic_resize_1d
from mmengine.config import Config

POSE = osp.join(REPO, 'configs', 'downstream', 'mmpose')
DET = osp.join(REPO, 'configs', 'downstream', 'mmdet')
COCO_OFFICIAL = osp.join(
    POSE, 'td-hm_dpal-vit-ti_8xb128-210e_coco-256x192_official.py')
HUMANART_OFFICIAL = osp.join(
    POSE, 'td-hm_dpal-vit-ti_8xb256-210e_humanart-256x192_official.py')
CROWDHUMAN_OFFICIAL = osp.join(
    DET, 'crowddet-rcnn_dpal-vit-ti_sfp_8xb2-30e_crowdhuman_official.py')
# the paper's tasks of this part of the protocol, by config
TASKS = {
    'coco-256x192': 'COCO',
    'humanart-256x192': 'Human-Art',
    'coco-wholebody-256x192': 'COCO-WholeBody',
    'crowdpose-256x192': 'CrowdPose',
    'crowdhuman': 'CrowdHuman',
}
OFFICIAL_CONFIGS = sorted(
    glob.glob(osp.join(POSE, '*_official.py')) +
    glob.glob(osp.join(DET, '*_official.py')))
HEADS = [6] * 11 + [12]  # the official student


# ------------------------------------------------- their code, by hand ----
def cubic_2d(grid, size):
    """Their ``resize_pos_embed`` (bicubic to ``size``, half-pixel centres)
    of an (h0, w0, C) grid: the cubic kernel along rows, then columns."""
    (h0, w0), (h, w) = grid.shape[:2], size
    rows = cubic_resize_1d(grid, h, h / h0)  # (h, w0, C)
    return cubic_resize_1d(rows.transpose(0, 1), w, w / w0).transpose(0, 1)


def sequence_1d(pos, num_patches):
    """Their pose ``interpolate_pos_encoding``: (1, 1 + N, C) -> (1, 1 + L,
    C), the patch part resized as a 1-D sequence, the class slot kept."""
    n = pos.shape[1] - 1
    if n == num_patches:
        return pos
    patches = cubic_resize_1d(pos[0, 1:], num_patches, num_patches / n)
    return torch.cat([pos[:, :1], patches[None]], dim=1)


def dino_scale_factor(pos, grid0, grid):
    """Their detection ``interpolate_pos_encoding``: DINO's bicubic resize
    by ``scale_factor=(h + 0.1) / h0, (w + 0.1) / w0`` (source positions
    from the scale factor, not from the sizes)."""
    (h0, w0), (h, w) = grid0, grid
    x = pos[0, 1:].reshape(h0, w0, -1)
    x = cubic_resize_1d(x, h, (h + 0.1) / h0)
    x = cubic_resize_1d(x.transpose(0, 1), w, (w + 0.1) / w0).transpose(0, 1)
    return torch.cat([pos[:, :1], x.reshape(1, h * w, -1)], dim=1)


def block(x, s, p, heads, eps):
    """One of their pre-norm blocks, with mmpretrain's tensor names."""
    B, N, C = x.shape
    y = F.layer_norm(x, (C, ), s[p + 'ln1.weight'], s[p + 'ln1.bias'], eps)
    qkv = y @ s[p + 'attn.qkv.weight'].T + s[p + 'attn.qkv.bias']
    q, k, v = qkv.reshape(B, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
    attn = ((q @ k.transpose(-2, -1)) * (C // heads)**-0.5).softmax(-1)
    y = (attn @ v).transpose(1, 2).reshape(B, N, C)
    x = x + y @ s[p + 'attn.proj.weight'].T + s[p + 'attn.proj.bias']
    y = F.layer_norm(x, (C, ), s[p + 'ln2.weight'], s[p + 'ln2.bias'], eps)
    y = y @ s[p + 'ffn.layers.0.0.weight'].T + s[p + 'ffn.layers.0.0.bias']
    y = 0.5 * y * (1 + torch.erf(y / math.sqrt(2)))  # nn.GELU()
    return x + y @ s[p + 'ffn.layers.1.weight'].T + s[p + 'ffn.layers.1.bias']


def authors_vit(s, img, padding, pos_fn, eps, heads=HEADS):
    """Their ViT forward: the (B, C, h, w) map of the patch tokens."""
    x = F.conv2d(
        img,
        s['patch_embed.projection.weight'],
        s['patch_embed.projection.bias'],
        stride=16,
        padding=padding)
    B, C, h, w = x.shape
    x = torch.cat(
        [s['cls_token'].expand(B, -1, -1),
         x.flatten(2).transpose(1, 2)], 1)
    x = x + pos_fn(s['pos_embed'], (h, w))
    for i, n in enumerate(heads):
        x = block(x, s, f'layers.{i}.', n, eps)
    x = F.layer_norm(x, (C, ), s['ln1.weight'], s['ln1.bias'], eps)
    return x[:, 1:].reshape(B, h, w, C).permute(0, 3, 1, 2)


def deconv2x2(x, weight, bias):
    """ConvTranspose2d(kernel 2, stride 2): every input pixel spreads into
    its own 2x2 output block."""
    B, _, h, w = x.shape
    y = torch.einsum('nchw,cokl->nohkwl', x, weight)
    return y.reshape(B, weight.shape[1], 2 * h, 2 * w) + bias[:, None, None]


def authors_pyramid(x, s):
    """Their up0 / up1 / identity / down2, BatchNorm with running stats."""
    y = deconv2x2(x, s['up0.0.weight'], s['up0.0.bias'])
    y = (y - s['up0.1.running_mean'][:, None, None]
         ) / torch.sqrt(s['up0.1.running_var'][:, None, None] + 1e-5)
    y = y * s['up0.1.weight'][:, None, None] + s['up0.1.bias'][:, None, None]
    y = 0.5 * y * (1 + torch.erf(y / math.sqrt(2)))
    up0 = deconv2x2(y, s['up0.3.weight'], s['up0.3.bias'])
    up1 = deconv2x2(x, s['up1.0.weight'], s['up1.0.bias'])
    down2 = F.conv2d(
        x, s['down2.0.weight'], s['down2.0.bias'], stride=2, padding=1)
    return up0, up1, x, down2


# ------------------------------------------------------------- tests ----
@pytest.fixture(scope='module')
def official_student(official_vit_ti_student, tmp_path_factory):
    """The official ViT-Ti/16 student of conftest.py (12 heads in the last
    block) with a random class token and
    position embedding (the ViT's are zeros until its init_weights), so
    that where they go shows in the output."""
    path, state = official_vit_ti_student
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    torch.manual_seed(2)
    state = dict(state)
    for key in ('cls_token', 'pos_embed'):
        state[key] = torch.randn_like(state[key])
        ckpt['state_dict'][f'backbone.{key}'] = state[key]
    path = str(tmp_path_factory.mktemp('official_student') / 'student.pth')
    torch.save(ckpt, path)
    return path, state


def built(config, student_path, scope='mmpose'):
    model = build_with_student(config, scope, student_path)
    return model.eval()


def test_coco_pose_backbone_equals_the_authors_vit(official_student):
    """COCO: class token in the sequence, 1 + 16x8 loaded as it is, 128 ->
    192 positions as a 1-D sequence in every forward, padding 2, 12 heads in
    the last block."""
    path, student = official_student
    vit = built(COCO_OFFICIAL, path).backbone
    assert vit.pos_embed.shape == (1, 1 + 128, 192)
    torch.testing.assert_close(vit.pos_embed, student['pos_embed'])
    assert [layer.attn.num_heads for layer in vit.layers] == HEADS
    torch.manual_seed(0)
    img = torch.randn(2, 3, 256, 192)
    with torch.no_grad():
        ours = vit(img)[0]
        theirs = authors_vit(
            student,
            img,
            padding=2,
            pos_fn=lambda pos, grid: sequence_1d(pos, grid[0] * grid[1]),
            eps=1e-6)
        # controls: mmpretrain's 2-D resize, or 6 heads in the last block
        vit.pos_embed_resize = 'grid'
        grid_2d = vit(img)[0]
        vit.pos_embed_resize = 'sequence_1d'
        six_heads = authors_vit(
            student,
            img,
            2,
            lambda pos, grid: sequence_1d(pos, grid[0] * grid[1]),
            1e-6,
            heads=[6] * 12)
    assert ours.shape == (2, 192, 16, 12)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    assert (grid_2d - theirs).abs().max() > 1e-2
    assert (six_heads - theirs).abs().max() > 1e-2


def test_humanart_pose_backbone_equals_the_authors_vit(official_student):
    """Human-Art (and CrowdPose, the same backbone keys): their
    img_size=(224, 224) resizes the 16x8 grid to 14x14 (2-D) at loading,
    then 196 -> 192 positions (1-D) in every forward."""
    path, student = official_student
    vit = built(HUMANART_OFFICIAL, path).backbone
    pos = torch.cat([
        student['pos_embed'][:, :1],
        cubic_2d(student['pos_embed'][0, 1:].reshape(16, 8, -1),
                 (14, 14)).reshape(1, 196, -1)
    ], 1)
    torch.testing.assert_close(vit.pos_embed, pos, rtol=1e-5, atol=1e-5)
    img = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        ours = vit(img)[0]
    theirs = authors_vit(
        dict(student, pos_embed=pos),
        img,
        padding=2,
        pos_fn=lambda pos, grid: sequence_1d(pos, grid[0] * grid[1]),
        eps=1e-6)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    crowdpose = Config.fromfile(
        osp.join(
            POSE, 'td-hm_dpal-vit-ti_8xb64-210e_crowdpose-256x192'
            '_official.py')).model.backbone
    assert crowdpose == Config.fromfile(HUMANART_OFFICIAL).model.backbone


def test_crowdhuman_backbone_and_pyramid_equal_the_authors(official_student):
    """CrowdHuman: their detection ViT (class token, DINO's scale-factor
    resize of 1 + 16x8 in every forward, no padding, LayerNorm eps 1e-5)
    and their pyramid, on the same weights (BatchNorm with non-trivial
    running statistics, in eval mode); then mmdet's FPN."""
    from mmdet.models.necks import FPN

    from mmdpal.models import DeconvPyramid
    path, student = official_student
    model = built(CROWDHUMAN_OFFICIAL, path, 'mmdet')
    vit, (pyramid, fpn) = model.backbone, model.neck
    assert isinstance(pyramid, DeconvPyramid) and isinstance(fpn, FPN)
    assert fpn.in_channels == [48, 96, 192, 192]
    torch.manual_seed(1)
    bn = pyramid.up0[1]
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    bn.weight.data.uniform_(0.5, 1.5)
    img = torch.randn(1, 3, 128, 192)  # an 8x12 grid
    with torch.no_grad():
        feat = vit(img)
        levels = pyramid(feat)
        outs = model.extract_feat(img)
    theirs = authors_vit(
        student,
        img,
        padding=0,
        pos_fn=lambda pos, grid: dino_scale_factor(pos, (16, 8), grid),
        eps=1e-5)
    torch.testing.assert_close(feat[0], theirs, rtol=1e-4, atol=1e-4)
    reference = authors_pyramid(theirs, pyramid.state_dict())
    assert [tuple(t.shape[1:]) for t in levels] == [(48, 32, 48), (96, 16, 24),
                                                    (192, 8, 12), (192, 4, 6)]
    for ours, ref in zip(levels, reference):
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
    assert [tuple(o.shape[-2:]) for o in outs] == [(32, 48), (16, 24), (8, 12),
                                                   (4, 6), (2, 3)]
    # control: the LayerNorm eps of the pose ViT gives another map
    eps_6 = authors_vit(
        student, img, 0,
        lambda pos, grid: dino_scale_factor(pos, (16, 8), grid), 1e-6)
    assert (eps_6 - theirs).abs().max() > 1e-5


def test_deconv_pyramid_initializes_as_theirs():
    """Xavier-uniform (de)convolution weights, PyTorch's default biases
    (not zeroed), BatchNorm 1 / 0."""
    from mmdpal.models import DeconvPyramid
    torch.manual_seed(0)
    neck = DeconvPyramid(64)
    neck.init_weights()
    w = neck.down2[0].weight  # fan_in = fan_out = 64 * 9
    bound = math.sqrt(6 / (2 * 64 * 9))
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    assert neck.down2[0].bias.abs().max() > 0
    assert torch.equal(neck.up0[1].weight, torch.ones(32))
    with pytest.raises(ValueError, match='multiple of 4'):
        DeconvPyramid(30)


def param_groups(constructor, model):
    """{parameter name: (lr, weight decay)} of an optimizer constructor."""
    optim = constructor(model).optimizer
    names = {id(p): n for n, p in model.named_parameters()}
    return {
        names[id(p)]: (g['lr'], g['weight_decay'])
        for g in optim.param_groups
        for p in g['params']
    }


def theirs_named(model):
    """The same parameters under the authors' names: ``backbone.blocks.N``
    for ``backbone.layers.N``, ``backbone.norm`` for ``backbone.ln1``."""
    theirs, backbone = nn.Module(), nn.Module()
    vit = model.backbone
    backbone.cls_token, backbone.pos_embed = vit.cls_token, vit.pos_embed
    backbone.patch_embed, backbone.blocks = vit.patch_embed, vit.layers
    backbone.norm = vit.ln1
    theirs.backbone, theirs.head = backbone, model.head
    return theirs


def test_layer_decay_quirk_is_mmpose_on_their_names(official_student):
    """mmpose's own constructor on the parameters named as the authors'
    (blocks fall through to the head's group) gives exactly the groups of
    the official configs' constructor (scale_blocks=False) on ours; with
    scale_blocks=True it is mmpose's on ours."""
    from mmengine.optim import DefaultOptimWrapperConstructor
    from mmpose.engine.optim_wrappers.layer_decay_optim_wrapper import \
        LayerDecayOptimWrapperConstructor

    from mmdpal.engine import ViTLayerDecayOptimWrapperConstructor
    path, _ = official_student
    model = built(COCO_OFFICIAL, path)
    cfg = Config.fromfile(COCO_OFFICIAL).optim_wrapper
    assert cfg.constructor == 'mmdpal.ViTLayerDecayOptimWrapperConstructor'
    wrapper = dict(type='OptimWrapper', optimizer=dict(cfg.optimizer))
    wrapper['optimizer'].pop('_scope_', None)
    rate = dict(num_layers=12, layer_decay_rate=0.75)
    ours = param_groups(
        ViTLayerDecayOptimWrapperConstructor(wrapper, cfg.paramwise_cfg),
        model)

    theirs = param_groups(
        LayerDecayOptimWrapperConstructor(wrapper, rate), theirs_named(model))
    to_ours = {
        n:
        re.sub(r'^backbone\.blocks\.', 'backbone.layers.',
               n).replace('backbone.norm.', 'backbone.ln1.')
        for n in theirs
    }
    assert {to_ours[n]: v for n, v in theirs.items()} == ours
    lr = cfg.optimizer.lr
    assert ours['backbone.pos_embed'] == (lr * 0.75**13, 0.)
    assert ours['backbone.cls_token'] == (lr * 0.75**13, 0.1)
    assert ours['backbone.layers.0.attn.qkv.weight'] == (lr, 0.1)
    assert ours['backbone.layers.0.attn.qkv.bias'] == (lr, 0.)

    decayed = param_groups(
        ViTLayerDecayOptimWrapperConstructor(wrapper,
                                             dict(rate, scale_blocks=True)),
        model)
    assert decayed == param_groups(
        LayerDecayOptimWrapperConstructor(wrapper, rate), model)
    assert decayed['backbone.layers.0.attn.qkv.weight'] == (lr * 0.75**12, 0.1)
    with pytest.raises(ValueError, match="got \\['custom_keys'"):
        ViTLayerDecayOptimWrapperConstructor(
            wrapper, dict(custom_keys={}, num_layers=12))
    assert issubclass(ViTLayerDecayOptimWrapperConstructor,
                      DefaultOptimWrapperConstructor)


# ------------------------------------------------- the table of keys ----
def default_of(official):
    """Our config of the task: the one the official config inherits (the
    names may differ where the protocols train other epochs or batches)."""
    with open(official) as f:
        base = re.search(r"^_base_ = '\./(.+\.py)'$", f.read(), re.M)
    assert base, f'{official}: no single _base_ to compare with'
    return osp.join(osp.dirname(official), base.group(1))


def flat(value, prefix=''):
    if isinstance(value, dict) and value:
        out = {}
        for key, item in value.items():
            out.update(flat(item, f'{prefix}{key}.'))
        return out
    return {prefix[:-1]: value}


def documented_rows():
    """(key, tasks) of every row of docs/downstream.md's tables: the key is
    the first code span of the first cell (before any ``=``), the tasks the
    second cell's comma-separated names (without parenthesised values)."""
    with open(osp.join(REPO, 'docs', 'downstream.md')) as f:
        text = f.read()
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        key = re.match(r'`([^`=]+)', cells[0])
        if len(cells) < 5 or key is None:
            continue
        tasks = {
            re.sub(r'\s*\(.*?\)', '', t).strip()
            for t in cells[1].split(',')
        }
        rows.append((key.group(1).strip(), tasks))
    return rows


@pytest.mark.parametrize('official', OFFICIAL_CONFIGS, ids=osp.basename)
def test_every_difference_is_a_row_of_the_table(official):
    """Each leaf key where the official config differs from ours is, or is
    under, a key of a docs/downstream.md row that names the task."""
    task = next(
        t for k, t in TASKS.items()
        if f'_{k}_official' in official or f'-30e_{k}_official' in official)
    ours = flat(Config.fromfile(default_of(official)).to_dict())
    theirs = flat(Config.fromfile(official).to_dict())
    rows = [key for key, tasks in documented_rows() if task in tasks]
    missing = []
    for key in sorted(set(ours) | set(theirs)):
        if key.startswith('official_') or key.endswith('_scope_'):
            continue  # variables of the bases; registry bookkeeping
        if ours.get(key, '<absent>') == theirs.get(key, '<absent>'):
            continue
        if not any(key == r or key.startswith(r + '.') for r in rows):
            missing.append(key)
    assert not missing, f'{task}: not in docs/downstream.md: {missing}'


def test_resampled_pos_vit_refuses_an_unknown_resize():
    from mmdpal.models import ResampledPosViT
    with pytest.raises(
            ValueError,
            match=r"pos_embed_resize='2d': use one of "
            r"\['grid', 'sequence_1d', 'dino_scale_factor'\]"):
        ResampledPosViT(arch='deit-tiny', pos_embed_resize='2d')


# one official config per task and the toolbox whose scope builds it
EVERY_TASK_OFFICIAL = [
    (COCO_OFFICIAL, 'mmpose'),
    (CROWDHUMAN_OFFICIAL, 'mmdet'),
    (osp.join(REPO, 'configs', 'downstream', 'mmseg',
              'dpal-vit-ti_ce2p_8xb12-150e_lip-576x384_official.py'), 'mmseg'),
    (osp.join(
        REPO, 'configs', 'downstream', 'reid',
        'bnneck-reid_dpal-vit-ti_1xb64-120e_market1501-256x128'
        '_official.py'), 'mmdet'),
    (osp.join(REPO, 'configs', 'downstream', 'attribute',
              'mlc_dpal-vit-ti_1xb64-30e_pa100k-256x128_official.py'),
     'mmpretrain'),
]


@pytest.mark.parametrize(
    'official,scope', EVERY_TASK_OFFICIAL, ids=lambda v: osp.basename(v)[:24])
def test_a_student_of_the_other_protocol_is_refused_in_one_line(
        official, scope, vit_ti_student, official_vit_ti_student):
    """The same tensors, other heads: the paper-mode student (6 heads in
    the last block) given an official config, and the official student
    (12) given the task's default config, each refuse in one line naming
    the file, the block and model.backbone.layer_cfgs."""
    from mmdpal.models import ArchitectureMismatchError
    default = default_of(official)
    for config, (path, _), theirs, ours in (
        (official, vit_ti_student, 6, 12),
        (default, official_vit_ti_student, 12, 6),
    ):
        with pytest.raises(ArchitectureMismatchError) as error:
            build_with_student(config, scope, path)
        message = str(error.value)
        assert '\n' not in message, message
        assert path in message
        assert (f'heads of block 12 (layers.11): checkpoint {theirs}, '
                f'model {ours}') in message
        assert 'set model.backbone.layer_cfgs=' in message
