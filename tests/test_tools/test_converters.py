"""tools/model_converters/path_to_mmdpal.py: released PATH / MAE / timm names
-> the teacher's names, round trip through the real tool."""
import os.path as osp

import torch
from mmdpal_testing import TINY_TEACHER_ARCH, run_tool
from mmpretrain.models import VisionTransformer

import mmdpal  # noqa: F401
from mmdpal.models import ViTTeacher
from mmdpal.models.teachers.converters import convert_timm_vit


def mmpretrain_to_timm(state):
    """The inverse map, written out by hand: mmpretrain -> MAE/timm names."""
    out = {}
    for k, v in state.items():
        t = (
            k.replace('patch_embed.projection.', 'patch_embed.proj.').replace(
                '.ffn.layers.0.0.',
                '.mlp.fc1.').replace('.ffn.layers.1.', '.mlp.fc2.').replace(
                    'layers.',
                    'blocks.').replace('.ln1.',
                                       '.norm1.').replace('.ln2.', '.norm2.'))
        if t.startswith('ln1.'):
            t = 'norm.' + t[len('ln1.'):]
        out[t] = v
    return out


def tiny_vit(seed=0, img_size=(64, 32)):
    torch.manual_seed(seed)
    vit = VisionTransformer(
        arch=TINY_TEACHER_ARCH,
        img_size=img_size,
        patch_size=8,
        out_type='raw')
    vit.eval()
    return vit


def teacher_cfg():
    return dict(
        type='mmpretrain.VisionTransformer',
        arch=TINY_TEACHER_ARCH,
        img_size=(64, 32),
        patch_size=8)


def test_path_checkpoint_round_trip_through_the_tool(tmp_path):
    vit = tiny_vit()
    released = {
        'module.backbone.' + k: v
        for k, v in mmpretrain_to_timm(vit.state_dict()).items()
    }
    released['module.head.weight'] = torch.zeros(10, 48)  # dropped, listed
    src, dst = str(tmp_path / 'path_b.pth'), str(tmp_path / 'converted.pth')
    torch.save({'model': released, 'epoch': 3}, src)
    result = run_tool(['tools/model_converters/path_to_mmdpal.py', src, dst])
    assert result.returncode == 0, result.stderr
    assert 'dropped 1 keys' in result.stdout and 'head.weight' in result.stdout
    converted = torch.load(dst, weights_only=True)
    assert set(converted) == set(vit.state_dict())
    teacher = ViTTeacher(teacher_cfg(), dst)  # strict
    img = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        expected = vit(img)[0]
    out = teacher(img, (8, 4))
    torch.testing.assert_close(out.cls_token, expected[:, 0])
    torch.testing.assert_close(out.patch_tokens, expected[:, 1:])


def test_split_qv_bias_and_pos_embed_without_class_slot():
    # a square grid (4 x 4, like PATH's 14 x 14): a missing class slot is
    # recognisable (16 positions, not 17); for a non-square grid it is not,
    # and the teacher's strict load reports the pos_embed shape instead
    vit = tiny_vit(img_size=(32, 32))
    timm = mmpretrain_to_timm(vit.state_dict())
    C = TINY_TEACHER_ARCH['embed_dims']
    for i in range(TINY_TEACHER_ARCH['num_layers']):
        bias = timm.pop(f'blocks.{i}.attn.qkv.bias')
        timm[f'blocks.{i}.attn.q_bias'] = bias[:C]
        timm[f'blocks.{i}.attn.v_bias'] = bias[2 * C:]
    timm['pos_embed'] = timm['pos_embed'][:, 1:]  # 16 positions, no slot
    state, dropped, notes = convert_timm_vit({'state_dict': timm})
    assert not dropped
    assert any('zero slot' in n for n in notes)
    assert torch.equal(state['layers.0.attn.qkv.bias'][C:2 * C],
                       torch.zeros(C))
    assert torch.equal(state['layers.1.attn.qkv.bias'][:C],
                       vit.state_dict()['layers.1.attn.qkv.bias'][:C])
    assert state['pos_embed'].shape == vit.pos_embed.shape
    assert torch.equal(state['pos_embed'][:, 0], torch.zeros(1, C))


def test_the_tool_refuses_a_file_without_vit_weights(tmp_path):
    src = str(tmp_path / 'not_a_vit.pth')
    torch.save({'model': {'fc.weight': torch.zeros(2, 2)}}, src)
    result = run_tool([
        'tools/model_converters/path_to_mmdpal.py', src,
        str(tmp_path / 'out.pth')
    ])
    assert result.returncode != 0
    assert 'no ViT weights found' in result.stderr
    missing = run_tool([
        'tools/model_converters/path_to_mmdpal.py',
        str(tmp_path / 'nope.pth'),
        str(tmp_path / 'o.pth')
    ])
    assert missing.returncode != 0 and 'nope.pth' in missing.stderr


def test_extract_student_refuses_a_checkpoint_without_a_backbone(tmp_path):
    src = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {'head.fc.weight': torch.zeros(2)}}, src)
    result = run_tool([
        'tools/model_converters/extract_student.py', src,
        str(tmp_path / 'out.pth')
    ])
    assert result.returncode != 0
    assert 'no "backbone.*" keys' in result.stderr
    assert not osp.exists(str(tmp_path / 'out.pth'))
