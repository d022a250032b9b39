"""The authors' DPAL checkpoints in mmdpal: tools/model_converters/
dpal_official_to_mmdpal.py and mmdpal_to_dpal_official.py, through the real
tools, on checkpoints built the way their script saves one, checked against a
step-by-step reference of their ViT forward written here; bad inputs each
refused in one line; the architecture check of mmdpal.StrictPretrained."""
import argparse
import contextlib
import io
import os.path as osp
import runpy
import sys

import pytest
import torch
import torch.nn.functional as F
from mmdpal_testing import OFFICIAL_CONFIG, REPO, run_tool
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdpal  # noqa: F401
from mmdpal.models import ArchitectureMismatchError, StrictPretrained
from mmdpal.models.algorithms.dpal import vit_tokens_sequence_1d_pos
from mmdpal.registry import MODELS

TO_MMDPAL = 'tools/model_converters/dpal_official_to_mmdpal.py'
TO_AUTHORS = 'tools/model_converters/mmdpal_to_dpal_official.py'
PAPER_CONFIG = osp.join(REPO, 'configs', 'dpal', 'vit-ti_path-b_lup1m.py')
STUDENT_BASE = osp.join(REPO, 'configs', '_base_', 'models',
                        'dpal_vit-ti_student.py')
# their DPAL_kd_vit_tiny_patch16_moe: 192 dims, 12 blocks, 6 heads, 12 in
# the last block, MLP 768, patch 16, 256x128 (a 16x8 grid)
WIDTH, DEPTH, MLP, GRID = 192, 12, 768, (16, 8)
HEADS = [6] * 11 + [12]


# ------------------------------------------------ their files, built here
def authors_vit(seed):
    """Random weights of their ViT (``DPALViT``), in their names."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, std=0.02, mean=0.):
        return mean + std * torch.randn(*shape, generator=g)

    state = {
        'cls_token': randn(1, 1, WIDTH, std=0.5),
        'pos_embed': randn(1, 1 + GRID[0] * GRID[1], WIDTH, std=0.5),
        'patch_embed.proj.weight': randn(WIDTH, 3, 16, 16, std=0.05),
        'patch_embed.proj.bias': randn(WIDTH),
    }
    for i in range(DEPTH):
        b = f'blocks.{i}.'
        for norm in ('norm1', 'norm2'):
            state[b + norm + '.weight'] = randn(WIDTH, std=0.1, mean=1.)
            state[b + norm + '.bias'] = randn(WIDTH, std=0.1)
        state[b + 'attn.qkv.weight'] = randn(3 * WIDTH, WIDTH, std=0.08)
        state[b + 'attn.qkv.bias'] = randn(3 * WIDTH)
        state[b + 'attn.proj.weight'] = randn(WIDTH, WIDTH, std=0.05)
        state[b + 'attn.proj.bias'] = randn(WIDTH)
        state[b + 'mlp.fc1.weight'] = randn(MLP, WIDTH, std=0.05)
        state[b + 'mlp.fc1.bias'] = randn(MLP)
        state[b + 'mlp.fc2.weight'] = randn(WIDTH, MLP, std=0.03)
        state[b + 'mlp.fc2.bias'] = randn(WIDTH)
    state['norm.weight'] = randn(WIDTH, std=0.1, mean=1.)
    state['norm.bias'] = randn(WIDTH, std=0.1)
    state['inter_norm.weight'] = torch.ones(WIDTH)  # read by no loss
    state['inter_norm.bias'] = torch.zeros(WIDTH)
    return state


def authors_decoder(seed, out_dim=8):
    """Their decoder (``LossMOEDecoder``) in their names, shrunk (the
    generator of the real one has 28M weights); dropped by the converter."""
    g = torch.Generator().manual_seed(seed)
    shapes = {
        'pattern_queries': (1, 3, WIDTH),
        'gate.moe_tokens': (1, 1, WIDTH),
        'gate.weight': (3, WIDTH),
        'mlp.0.weight': (WIDTH * out_dim, WIDTH),
        'mlp.0.bias': (WIDTH * out_dim, ),
        'mlp.2.weight': (WIDTH * out_dim, ),
        'mlp.2.bias': (WIDTH * out_dim, )
    }
    for attn in ('attn', 'attn2'):
        shapes.update({
            f'{attn}.qkv.weight': (3 * WIDTH, WIDTH),
            f'{attn}.qkv.bias': (3 * WIDTH, ),
            f'{attn}.proj.weight': (WIDTH, WIDTH),
            f'{attn}.proj.bias': (WIDTH, )
        })
    for mha in ('gate.cross_attn', 'cross_attn'):
        shapes.update({
            f'{mha}.in_proj_weight': (3 * WIDTH, WIDTH),
            f'{mha}.in_proj_bias': (3 * WIDTH, ),
            f'{mha}.out_proj.weight': (WIDTH, WIDTH),
            f'{mha}.out_proj.bias': (WIDTH, )
        })
    for norm in ('norm1', 'norm2', 'norm3', 'norm4', 'norm5', 'gate.norm'):
        shapes.update({f'{norm}.weight': (WIDTH, ), f'{norm}.bias': (WIDTH, )})
    for norm in ('after_experts.norm', 'expert_norm'):
        shapes.update({
            f'{norm}.weight': (out_dim, ),
            f'{norm}.bias': (out_dim, )
        })
    return {k: torch.randn(*s, generator=g) for k, s in shapes.items()}


def their_args(**kwargs):
    """The Namespace their script saves (train_kd_path_moe_vit_tiny.sh's
    values), as ``args`` of the checkpoint."""
    args = dict(
        batch_size=256,
        epochs=200,
        accum_iter=1,
        height=256,
        width=128,
        model='DPAL_kd_vit_tiny_patch16_moe',
        teacher_model='expert_vit_base',
        teacher_pretrained='pretrained_models/humanbench_vit_base.pth',
        input_size=224,
        mask_ratio=0.75,
        norm_pix_loss=True,
        weight_decay=0.05,
        lr=0.002,
        blr=2.5e-4,
        min_lr=0.,
        warmup_epochs=10,
        data_path='data/LUP1M',
        output_dir='work_dirs/lup1m',
        seed=0,
        global_crops_scale=[0.8, 1.0],
        local_crops_scale=[0.05, 0.8],
        local_crops_number=2,
        crop_height=128,
        crop_width=96,
        world_size=8,
        rank=0,
        gpu=0,
        distributed=True,
        dist_url='env://',
        dist_backend='nccl',
        start_epoch=0)
    args.update(kwargs)
    return argparse.Namespace(**args)


def save_authors_checkpoint(path, raw, ema, args=None, epoch=200):
    """As main_align_pretrain_moe.py saves it: the DDP student
    (``module.``), its EMA copy under 'teacher' (not DDP-wrapped), the
    optimizer, the epoch and the argparse Namespace."""
    student = {f'module.backbone.{k}': v for k, v in raw.items()}
    student.update({
        f'module.adapter.{k}': v
        for k, v in authors_decoder(1).items()
    })
    teacher = {f'backbone.{k}': v for k, v in ema.items()}
    teacher.update({f'adapter.{k}': v for k, v in authors_decoder(2).items()})
    params = [torch.nn.Parameter(v.clone()) for v in student.values()]
    optimizer = torch.optim.AdamW(params, lr=2e-3, betas=(0.9, 0.95))
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer.step()
    torch.save(
        dict(
            student=student,
            teacher=teacher,
            optimizer=optimizer.state_dict(),
            epoch=epoch,
            args=their_args() if args is None else args), path)
    return path


# ------------------------------------------------ their ViT, step by step
def reference_tokens(state, img, heads, pos_1d_resize=False):
    """Their ``DPALViT.forward`` (mask ratio 0) written out: patch conv,
    position embedding (their 1-D resize of the patch positions when the
    grid differs), class token, pre-norm blocks (LayerNorm eps 1e-6,
    ``heads[i]`` heads, scale head_dim^-0.5, exact GELU), final norm.
    Returns the final-normed tokens (B, 1 + L, C)."""
    w = state['patch_embed.proj.weight']
    x = F.conv2d(img, w, state['patch_embed.proj.bias'], stride=w.shape[-1])
    x = x.flatten(2).transpose(1, 2)  # (B, L, C)
    B, L, C = x.shape
    pos = state['pos_embed']
    patch_pos = pos[:, 1:]
    if patch_pos.shape[1] != L:
        assert pos_1d_resize
        N = patch_pos.shape[1]
        patch_pos = F.interpolate(
            patch_pos.reshape(1, N, 1, C).permute(0, 3, 1, 2),
            size=(L, 1),
            mode='bicubic').permute(0, 2, 3, 1).reshape(1, L, C)
    x = x + patch_pos
    cls = (state['cls_token'] + pos[:, :1]).expand(B, -1, -1)
    x = torch.cat([cls, x], dim=1)
    N = x.shape[1]
    for i, h in enumerate(heads):
        b = f'blocks.{i}.'
        y = F.layer_norm(x, (C, ), state[b + 'norm1.weight'],
                         state[b + 'norm1.bias'], 1e-6)
        qkv = y @ state[b + 'attn.qkv.weight'].t() + state[b + 'attn.qkv.bias']
        qkv = qkv.reshape(B, N, 3, h, C // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * (C // h)**-0.5).softmax(dim=-1)
        y = (attn @ v).transpose(1, 2).reshape(B, N, C)
        x = x + y @ state[b + 'attn.proj.weight'].t() + state[b +
                                                              'attn.proj.bias']
        y = F.layer_norm(x, (C, ), state[b + 'norm2.weight'],
                         state[b + 'norm2.bias'], 1e-6)
        y = F.gelu(y @ state[b + 'mlp.fc1.weight'].t() +
                   state[b + 'mlp.fc1.bias'])
        x = x + y @ state[b + 'mlp.fc2.weight'].t() + state[b + 'mlp.fc2.bias']
    return F.layer_norm(x, (C, ), state['norm.weight'], state['norm.bias'],
                        1e-6)


# ------------------------------------------------ our side
class Holder(torch.nn.Module):
    """A model with a ``backbone``, as StrictPretrained loads into."""

    def __init__(self, backbone_cfg):
        super().__init__()
        init_default_scope('mmdpal')
        self.backbone = MODELS.build(backbone_cfg)


def official_student():
    """The student of configs/dpal/vit-ti_path-b_lup1m_official.py."""
    return Holder(Config.fromfile(OFFICIAL_CONFIG).model.backbone)


def load_strictly(holder, path, **kwargs):
    StrictPretrained(checkpoint=path, prefix='backbone.', **kwargs)(holder)
    holder.backbone.eval()  # mmpretrain's ViT.train() returns None
    return holder.backbone


def run_in_process(script, *args):
    """``python script args`` in this process (fast): the message it exited
    with (None when it did not) and what it printed."""
    argv, out = sys.argv, io.StringIO()
    sys.argv = [script, *args]
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(osp.join(REPO, script), run_name='__main__')
    except SystemExit as e:
        return e.code, out.getvalue()
    finally:
        sys.argv = argv
    return None, out.getvalue()


def convert(src, dst, *flags, script=TO_MMDPAL):
    message, out = run_in_process(script, *flags, src, dst)
    assert message is None, message
    return out


def refused(args, *expected):
    """The tool exits with one line that names what it was given and says
    what to do; nothing is written."""
    message, _ = run_in_process(*args)
    assert isinstance(message, str), message
    assert '\n' not in message, message
    for text in expected:
        assert text in message, message
    return message


@pytest.fixture(scope='module')
def authors_files(tmp_path_factory):
    root = tmp_path_factory.mktemp('authors')
    raw, ema = authors_vit(0), authors_vit(1)
    src = save_authors_checkpoint(str(root / 'checkpoint.pth'), raw, ema)
    return root, src, raw, ema


def test_their_checkpoint_converts_and_gives_their_tokens(authors_files):
    root, src, raw, ema = authors_files
    # their file is not readable as tensors only (the Namespace), and
    # holds two students: a plain load refuses it
    with pytest.raises(Exception, match='Namespace'):
        torch.load(src, weights_only=True)
    dst = str(root / 'student.pth')
    result = run_tool([TO_MMDPAL, src, dst])  # the real command line
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert ('dropped 41 keys that are not part of the student backbone: '
            'adapter.* (39), inter_norm.* (2)') in out
    ckpt = torch.load(dst, weights_only=True)
    meta = ckpt['meta']
    assert meta['weights'] == 'raw' and meta['epoch'] == 200
    assert meta['authors_model'] == 'DPAL_kd_vit_tiny_patch16_moe'
    assert meta['arch'] == dict(
        prefix='backbone.',
        type='VisionTransformer',
        embed_dims=WIDTH,
        num_layers=DEPTH,
        num_heads=HEADS,
        patch_size=[16, 16],
        pos_embed_grid=list(GRID),
        with_cls_token=True)

    student = load_strictly(official_student(), dst, pos_embed_grid=GRID)
    torch.manual_seed(0)
    img = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        tokens = student(img)[-1]
        expected = reference_tokens(raw, img, HEADS)
        assert expected.std() > 0.5  # not a degenerate network
        torch.testing.assert_close(tokens, expected, rtol=1e-4, atol=1e-4)
        # a local view (128x96): their 1-D resize of the position sequence,
        # as the official config trains with (student_pos_embed_resize)
        local = torch.randn(2, 3, 128, 96)
        torch.testing.assert_close(
            vit_tokens_sequence_1d_pos(student, local),
            reference_tokens(raw, local, HEADS, pos_1d_resize=True),
            rtol=1e-4,
            atol=1e-4)
        # the last block's 12 heads matter: 6 heads compute other tokens
        assert (reference_tokens(raw, img, [6] * 12) -
                expected).abs().max() > 1e-2


def test_ema_flag_gives_the_ema_copy(authors_files):
    root, src, raw, ema = authors_files
    dst = str(root / 'student_ema.pth')
    convert(src, dst, '--ema')
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['weights'] == 'ema'
    student = load_strictly(official_student(), dst)  # grid from the meta
    img = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        tokens = student(img)[-1]
        torch.testing.assert_close(
            tokens, reference_tokens(ema, img, HEADS), rtol=1e-4, atol=1e-4)
        assert (tokens - reference_tokens(raw, img, HEADS)).abs().max() > 0.1


def test_the_paper_student_refuses_it_naming_the_key(authors_files):
    """12 heads in the last block against the 6 of the paper student (and
    of the downstream student base): the same tensors, so without the
    recorded architecture it loaded with 0 missing keys."""
    root, src, _, _ = authors_files
    dst = str(root / 'student_check.pth')
    convert(src, dst)
    paper = Holder(Config.fromfile(PAPER_CONFIG).model.backbone)
    with pytest.raises(ArchitectureMismatchError) as error:
        load_strictly(paper, dst, pos_embed_grid=GRID)
    message = str(error.value)
    assert 'heads of block 12 (layers.11): checkpoint 12, model 6' in message
    assert ('set model.backbone.layer_cfgs=[dict(num_heads=6)] * 11 + '
            '[dict(num_heads=12)]') in message
    base = Config.fromfile(STUDENT_BASE)
    downstream = Holder(base.student_cls_token_backbone)
    with pytest.raises(ArchitectureMismatchError, match='layer_cfgs'):
        load_strictly(downstream, dst, pos_embed_grid=GRID)
    fixed = Holder(
        dict(
            base.student_cls_token_backbone,
            layer_cfgs=base.official_layer_cfgs))
    load_strictly(fixed, dst, pos_embed_grid=GRID)
    assert [layer.attn.num_heads for layer in fixed.backbone.layers] == HEADS


def test_released_student_files_of_any_wrapping(tmp_path):
    """'model' / 'state_dict' / 'student' / raw, with or without 'module.'
    and 'backbone.': the heads come from --last-block-heads (no args in the
    file); without it, one line says so."""
    raw = authors_vit(3)
    img = torch.randn(1, 3, 256, 128)
    expected = reference_tokens(raw, img, HEADS)
    files = {
        'model_module_backbone':
        dict(model={
            f'module.backbone.{k}': v
            for k, v in raw.items()
        }),
        'state_dict_backbone':
        dict(state_dict={
            f'backbone.{k}': v
            for k, v in raw.items()
        }),
        'student_module':
        dict(student={
            f'module.{k}': v
            for k, v in raw.items()
        }, epoch=3),
        'raw':
        dict(raw),
    }
    for name, content in files.items():
        src, dst = str(tmp_path / f'{name}.pth'), str(tmp_path / 'out.pth')
        torch.save(content, src)
        line = refused([TO_MMDPAL, src, dst], src, '--last-block-heads 12',
                       'the file has no args.model')
        assert 'heads of the last block are not known' in line
        out = convert(src, dst, '--last-block-heads', '12')
        assert 'input size 256x128 assumed' in out
        student = load_strictly(official_student(), dst)
        with torch.no_grad():
            torch.testing.assert_close(
                student(img)[-1], expected, rtol=1e-4, atol=1e-4)
    # a factory that says otherwise than the flag
    src = save_authors_checkpoint(
        str(tmp_path / 'pl.pth'), raw, raw,
        their_args(model='DPAL_kd_vit_tiny_patch16'
                   '_moe_path_large'))
    convert(src, str(tmp_path / 'pl_out.pth'))
    assert torch.load(
        str(tmp_path / 'pl_out.pth'),
        weights_only=True)['meta']['arch']['num_heads'] == [6] * 11 + [16]
    refused(
        [TO_MMDPAL, '--last-block-heads', '12', src,
         str(tmp_path / 'x.pth')], 'has 16 heads where --last-block-heads'
        ' says 12')


def test_bad_inputs_each_give_one_line(tmp_path):
    raw = authors_vit(4)
    dst = str(tmp_path / 'never_written.pth')

    neither = str(tmp_path / 'neither.pth')
    torch.save({
        'weights': {
            'fc.weight': torch.zeros(2, 2)
        },
        'epoch': 1
    }, neither)
    refused([TO_MMDPAL, neither, dst], neither, 'neither',
            "found keys ['weights', 'epoch']", 'blocks.N.attn.qkv.weight')

    two = str(tmp_path / 'two_students.pth')
    torch.save({'model': raw, 'state_dict': authors_vit(5)}, two)
    refused([TO_MMDPAL, two, dst], two, "two candidate students, in 'model' "
            "and 'state_dict'", 'keep one')
    mixed = str(tmp_path / 'mixed.pth')
    torch.save({**{f'backbone.{k}': v for k, v in raw.items()}, **raw}, mixed)
    refused([TO_MMDPAL, mixed, dst], mixed, 'two candidate students')

    class RunsCode:
        """Unpickling it would create a file."""

        def __init__(self, path):
            self.path = path

        def __reduce__(self):
            return (open, (self.path, 'w'))

    marker = str(tmp_path / 'unpickling_ran_code')
    unsafe = str(tmp_path / 'unsafe.pth')
    torch.save({
        'student': raw,
        'args': their_args(),
        'hook': RunsCode(marker)
    }, unsafe)
    refused([TO_MMDPAL, unsafe, dst], unsafe, "holds ['io.open']",
            'argparse.Namespace', 're-save')
    result = run_tool([TO_MMDPAL, unsafe, dst])  # the real command line
    assert result.returncode == 1
    assert result.stderr.strip() == refused([TO_MMDPAL, unsafe, dst])
    assert not osp.exists(marker)

    no_ema = str(tmp_path / 'no_ema.pth')
    torch.save({'model': raw}, no_ema)
    refused([TO_MMDPAL, '--ema', no_ema, dst], no_ema, 'drop --ema')

    ours = str(tmp_path / 'ours.pth')
    torch.save(
        {
            'state_dict': {
                'backbone.layers.0.attn.qkv.weight': torch.zeros(3, 1)
            }
        }, ours)
    refused([TO_MMDPAL, ours, dst], ours, "already in mmdpal's names")

    text = str(tmp_path / 'notes.pth')
    with open(text, 'w') as f:
        f.write('not a checkpoint\n')
    refused([TO_MMDPAL, text, dst], text, 'could not be read as a torch '
            'checkpoint')
    refused([TO_MMDPAL, str(tmp_path / 'nope.pth'), dst], 'nope.pth',
            'not found')

    incomplete = str(tmp_path / 'incomplete.pth')
    torch.save({
        k: v
        for k, v in raw.items() if 'blocks.3.' not in k
    }, incomplete)
    refused([TO_MMDPAL, '--last-block-heads', '12', incomplete, dst],
            incomplete, 'not a complete ViT of their layout')
    assert not osp.exists(dst)


def test_the_other_tools_point_to_the_converter(authors_files, tmp_path):
    """extract_student.py, path_to_mmdpal.py and StrictPretrained given
    their checkpoint: one line each, naming the converter; path_to_mmdpal
    no longer picks the EMA 'teacher' of a DPAL checkpoint."""
    _, src, raw, _ = authors_files
    out = str(tmp_path / 'x.pth')
    refused(['tools/model_converters/extract_student.py', src, out],
            'dpal_official_to_mmdpal.py')
    refused(['tools/model_converters/path_to_mmdpal.py', src, out],
            'not a teacher', 'dpal_official_to_mmdpal.py')
    dino = str(tmp_path / 'dino.pth')
    torch.save({'student': raw, 'teacher': raw, 'args': their_args()}, dino)
    refused(['tools/model_converters/path_to_mmdpal.py', dino, out],
            '--key student or --key teacher')
    convert(
        dino,
        out,
        '--key',
        'teacher',
        script='tools/model_converters/path_to_mmdpal.py')
    with pytest.raises(ValueError, match='dpal_official_to_mmdpal.py'):
        load_strictly(official_student(), src)


def test_back_to_their_names_and_round_trip(authors_files):
    """mmdpal_to_dpal_official.py: their loader (prefixes stripped as
    DPALViT.init_from_pretrain does) finds every tensor of their ViT; their
    forward on it gives our tokens; converting back gives the same file."""
    root, src, raw, _ = authors_files
    ours = str(root / 'student_rt.pth')
    convert(src, ours)
    theirs = str(root / 'theirs.pth')
    out = convert(ours, theirs, script=TO_AUTHORS)
    assert 'DPAL_kd_vit_tiny_patch16_moe' in out
    saved = torch.load(theirs, weights_only=True)
    assert 'model' in saved  # the key their loaders read first
    loaded = {
        k.replace('backbone.', '').replace('module.', ''): v
        for k, v in saved['model'].items()
    }
    assert set(loaded) == set(raw)  # every tensor of their DPALViT
    for key, value in raw.items():
        assert loaded[key].shape == value.shape, key
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    student = load_strictly(official_student(), ours)
    img = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        torch.testing.assert_close(
            reference_tokens(loaded, img, HEADS),
            student(img)[-1],
            rtol=1e-4,
            atol=1e-4)
    # and back: the heads come from the meta the reverse tool kept
    again = str(root / 'again.pth')
    convert(theirs, again)
    first = torch.load(ours, weights_only=True)
    second = torch.load(again, weights_only=True)
    assert second['meta']['arch'] == first['meta']['arch']
    assert set(second['state_dict']) == set(first['state_dict'])
    for key, value in first['state_dict'].items():
        assert torch.equal(second['state_dict'][key], value), key
