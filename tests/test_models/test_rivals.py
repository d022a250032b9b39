"""The Table 1 rivals in DPAL's runner (docs/methods.md): each objective
against a step-by-step reference written from its authors' code, one
optimiser step (student learns, teacher frozen), one-line build errors, and
configs that change only the model's objective and projector."""
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmdpal_testing import REPO
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed

import mmdpal  # noqa: F401
from mmdpal.registry import MODELS

DPAL = osp.join(REPO, 'configs', 'dpal', 'vit-ti_path-b_lup1m.py')
RIVALS = {
    name: osp.join(REPO, 'configs', 'rivals', f'{name}_vit-ti_path-b_lup1m.py')
    for name in ('vitkd', 'proteus', 'tinymim', 'maskedkd')
}
# tiny widths: student 32 (2 heads), teacher 48 (3 heads), 3 blocks each,
# patch 8, global view 64x32 -> grid 8x4
STUDENT = dict(
    embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)
TEACHER = dict(
    embed_dims=48, num_layers=3, num_heads=3, feedforward_channels=96)
WIDTHS = dict(student_dims=32, teacher_dims=48)


@pytest.fixture(scope='module')
def teacher_path(tmp_path_factory):
    torch.manual_seed(0)
    vit = VisionTransformer(
        arch=TEACHER, img_size=(64, 32), patch_size=8, out_type='raw')
    path = str(tmp_path_factory.mktemp('teacher') / 'teacher.pth')
    torch.save(vit.state_dict(), path)
    return path


def tiny_cfg(name, teacher_path, **options):
    """The rival's config with the tiny student / teacher."""
    model = Config.fromfile(RIVALS[name]).model
    model.backbone.update(arch=STUDENT, img_size=(64, 32), patch_size=8)
    model.teacher.backbone.update(
        arch=TEACHER, img_size=(64, 32), patch_size=8)
    model.teacher.checkpoint = teacher_path
    model.update({k: v for k, v in WIDTHS.items() if k in model})
    if model.type == 'TinyMIMDistiller':  # last block: the teacher's heads
        model.backbone.update(
            arch=dict(STUDENT, embed_dims=48),
            layer_cfgs=[dict(), dict(), dict(num_heads=3)])
    model.update(options)
    return model


def build(model_cfg):
    init_default_scope('mmdpal')
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


def views(batch=2):
    g = torch.Generator().manual_seed(1)
    return [
        torch.randn(batch, 3, 64, 32, generator=g),
        torch.randn(batch, 3, 32, 24, generator=g),
        torch.randn(batch, 3, 32, 24, generator=g),
        torch.randn(batch, 3, 64, 64, generator=g),
    ]


def vit_outputs(vit, img, indices):
    """mmpretrain's own ``VisionTransformer.forward`` with ``out_indices``:
    the tokens after each block, the last final-normed."""
    saved = vit.out_indices
    vit.out_indices = list(indices)
    try:
        return list(vit(img))
    finally:
        vit.out_indices = saved


def check_step(model):
    """One optimiser step changes the student, not the teacher; the
    checkpoint leaves the teacher out and reloads strictly."""
    teacher = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    student = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-2))
    model.train()
    data = dict(
        inputs=[(v * 50 + 120).clamp(0, 255).to(torch.uint8) for v in views()],
        data_samples=None)
    model.train_step(data, optim)
    assert not model.teacher.training
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, teacher[k]), f'teacher {k} changed'
    assert any(not torch.equal(v, student[k])
               for k, v in model.backbone.state_dict().items())
    state = model.state_dict()
    assert not any(k.startswith('teacher.') for k in state)
    model.load_state_dict(state, strict=True)


def check_refused(model_cfg, key):
    with pytest.raises(Exception) as info:
        build(model_cfg)
    message = str(info.value)
    assert key in message and '\n' not in message.strip(), message


# ------------------------------------------------------------------ configs
@pytest.mark.parametrize('name', sorted(RIVALS))
def test_config_changes_only_the_objective(name):
    """Data, optimiser, schedule, runtime, student, teacher and data
    preprocessor are the DPAL config's; only the model's type, objective
    and projector differ."""
    rival, dpal = Config.fromfile(RIVALS[name]), Config.fromfile(DPAL)
    # what TinyMIM needs (its config says why): the teacher's 12 heads in the
    # student's last block, a student whose last block and final norm get no
    # gradient
    needs = dict(layer_cfgs=[dict()] * 11 + [dict(num_heads=12)]) \
        if name == 'tinymim' else {}
    for key in set(rival.keys()) | set(dpal.keys()):
        if key == 'find_unused_parameters' and name == 'tinymim':
            assert rival[key] and not dpal[key]
        elif key != 'model':
            assert rival.get(key) == dpal.get(key), key
    assert rival.model.backbone == dict(dpal.model.backbone, **needs)
    for key in ('teacher', 'data_preprocessor'):
        assert rival.model[key] == dpal.model[key], key
    assert 'decoder' not in rival.model


# ------------------------------------------------------------------ ViTKD
def vitkd_reference(model, img, seed):
    """ViTKD step by step as yzd-v/cls_KD@1e5d48f writes it:

    * features (mmcls/models/backbones/vision_transformer.py lines 434-472):
      ``low_f`` = patch tokens after blocks 0 and 1 stacked (B, 2, N, D),
      ``high_f`` = patch tokens after the last block and its final norm;
      the same for the teacher (distiller.py line 141 passes both);
    * mimicking (mmcls/models/dis_losses/vitkd.py lines 59-68): one linear
      ``align2[i]`` per block, ``MSELoss(reduction='sum') / B * alpha``;
    * generation (lines 70-89): ``align``, ``random_masking`` (lines
      93-120: argsort of uniform noise, keep ``int(N * (1 - lambda))``),
      mask tokens concatenated and un-shuffled by ``gather``, two 3x3
      convolutions on the token grid, summed squared error at the masked
      tokens ``/ B * beta / lambda``.

    The one change: the grid is the view's (h, w), where vitkd.py line 84
    assumes a square one (``hw = int(N ** 0.5)``).
    """
    last = len(model.backbone.layers) - 1
    s = vit_outputs(model.backbone, img, [0, 1, last])
    t = vit_outputs(model.teacher.vit, img, [0, 1, last])
    low_s = torch.stack([s[0][:, 1:], s[1][:, 1:]], dim=1)
    low_t = torch.stack([t[0][:, 1:], t[1][:, 1:]], dim=1)
    high_s, high_t = s[2][:, 1:], t[2][:, 1:]
    B = low_s.shape[0]
    loss_mse = nn.MSELoss(reduction='sum')
    xc = torch.cat(
        [model.mimic_projs[i](low_s[:, i]).unsqueeze(1) for i in range(2)], 1)
    loss_lr = loss_mse(xc, low_t) / B * model.mimic_weight

    x = model.deep_proj(high_s)
    B, N, D = x.shape
    lam = model.mask_ratio
    len_keep = int(N * (1 - lam))
    torch.manual_seed(seed)
    noise = torch.rand(B, N)
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    x_keep = torch.gather(x, 1, ids_keep.unsqueeze(-1).repeat(1, 1, D))
    mat = torch.ones([B, N])
    mat[:, :len_keep] = 0
    mat = torch.gather(mat, 1, ids_restore)
    mask_tokens = model.mask_token.repeat(B, N - len_keep, 1)
    x_ = torch.cat([x_keep, mask_tokens], dim=1)
    x = torch.gather(x_, 1, ids_restore.unsqueeze(-1).repeat(1, 1, D))
    mask = mat.unsqueeze(-1)
    h, w = img.shape[-2] // 8, img.shape[-1] // 8
    x = x.reshape(B, h, w, D).permute(0, 3, 1, 2)
    x = model.generation(x).flatten(2).transpose(1, 2)
    loss_gen = loss_mse(torch.mul(x, mask), torch.mul(high_t, mask))
    loss_gen = loss_gen / B * model.generation_weight / lam
    return loss_lr, loss_gen


def test_vitkd_matches_reference_and_trains(teacher_path):
    model = build(tiny_cfg('vitkd', teacher_path))
    model.eval()  # no dropout: the mask noise is the only draw
    with torch.no_grad():
        # non-zero mask token and projections
        model.mask_token.normal_()
        inputs = views()
        torch.manual_seed(7)
        losses = model.loss(inputs, None)
        ref_mimic, ref_gen = vitkd_reference(model, inputs[0], seed=7)
    assert set(losses) == {'loss_mimic', 'loss_generation'}
    torch.testing.assert_close(
        losses['loss_mimic'], ref_mimic, rtol=1e-5, atol=0)
    torch.testing.assert_close(
        losses['loss_generation'], ref_gen, rtol=1e-5, atol=0)
    print('vitkd max diff', (losses['loss_mimic'] - ref_mimic).abs().item(),
          (losses['loss_generation'] - ref_gen).abs().item())
    check_step(model)


@pytest.mark.parametrize('options,key', [
    (dict(teacher_dims=64), 'teacher_dims'),
    (dict(student_dims=48), 'student_dims'),
    (dict(mimic_layers=(0, 2)), 'mimic_layers'),
    (dict(mask_ratio=1.0), 'mask_ratio'),
    (dict(relation_loss=dict(type='RelationAlignLoss')), 'relation_loss'),
])
def test_vitkd_refuses(teacher_path, options, key):
    check_refused(tiny_cfg('vitkd', teacher_path, **options), key)


@pytest.mark.parametrize('name', sorted(RIVALS))
def test_refuses_a_teacher_off_the_student_grid(teacher_path, name):
    cfg = tiny_cfg(name, teacher_path)
    cfg.teacher.align = 'interpolate_tokens'
    check_refused(cfg, 'teacher.align')


# ------------------------------------------------------------------ Proteus
def dinov2_forward(vit, img, masks, mask_token):
    """DINOv2's ``prepare_tokens_with_masks`` + blocks + norm, as Proteus's
    student runs (Proteus-pytorch@8b1b274 pretrain/models_dinov2.py lines
    684-725): patch embedding, ``torch.where(masks, mask_token, x)``, class
    token, position embedding, blocks, final norm; written here with
    mmpretrain's parts."""
    x, grid = vit.patch_embed(img)
    if masks is not None:
        x = torch.where(masks.unsqueeze(-1), mask_token.to(x.dtype), x)
    x = torch.cat((vit.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
    x = x + resize_pos_embed(vit.pos_embed, vit.patch_resolution, grid,
                             vit.interpolate_mode, vit.num_extra_tokens)
    x = vit.pre_norm(vit.drop_after_pos(x))
    for layer in vit.layers:
        x = layer(x)
    x = vit.ln1(x)
    return dict(x_norm_clstoken=x[:, 0], x_norm_patchtokens=x[:, 1:])


def proteus_reference(model, img, seed):
    """Proteus step by step as Proteus-pytorch@8b1b274 writes it
    (pretrain/models_proteus_dinov2.py ``MetaArch.forward``, lines 85-173,
    and pretrain/augmentations.py ``collate_data_and_cast_aug``, lines
    45-82, with ``--mask_probability 0.5 --mask_ratio 0.5 --mask_first_n``
    of run_pretrain.sh): the first ``int(B * p)`` images masked, the others
    with an empty mask, no shuffle; the student run on the masked and the
    unmasked batch; the masked tokens gathered by ``index_select`` of the
    flattened mask indices; three ``nn.MSELoss()`` terms.

    The masks are drawn as the algorithm draws them (torch's generator;
    theirs is numpy's ``shuffle`` of ``int(N * ratio)`` ones, the same
    distribution)."""
    B = img.shape[0]
    t = model.teacher.vit(img)[-1]  # same grid, no resize
    teacher_cls_tokens, teacher_patch_tokens = t[:, 0], t[:, 1:]
    N = teacher_patch_tokens.shape[1]
    n_samples_masked = int(B * model.mask_probability)
    torch.manual_seed(seed)
    noise = torch.rand(n_samples_masked, N)
    num = int(N * model.mask_ratio)
    masks_list = []
    for i in range(n_samples_masked):
        m = torch.zeros(N, dtype=torch.bool)
        m[noise[i].argsort()[:num]] = True
        masks_list.append(m)
    for i in range(n_samples_masked, B):
        masks_list.append(torch.zeros(N, dtype=torch.bool))
    masks = torch.stack(masks_list).flatten(1)
    mask_indices_list = masks.flatten().nonzero().flatten()
    teacher_patch_tokens_masked = torch.index_select(
        teacher_patch_tokens.flatten(0, 1), dim=0, index=mask_indices_list)

    vit, mask_token = model.backbone, model.mask_token[0]
    masked = dinov2_forward(vit, img, masks, mask_token)
    unmask = dinov2_forward(vit, img, None, mask_token)
    student_patch_tokens = masked['x_norm_patchtokens']
    student_patch_tokens_masked_in = torch.index_select(
        student_patch_tokens.flatten(0, 1), dim=0, index=mask_indices_list)
    student_patch_tokens_unmask = model.feature_head(
        unmask['x_norm_patchtokens'])
    student_cls_token_unmask = model.token_head(unmask['x_norm_clstoken'])
    student_patch_tokens_masked = model.patch_head(
        student_patch_tokens_masked_in)
    soft_criterion = nn.MSELoss()
    token = soft_criterion(student_cls_token_unmask, teacher_cls_tokens)
    student_whole_fea = torch.cat(
        (student_cls_token_unmask.unsqueeze(1), student_patch_tokens_unmask),
        dim=1)
    teacher_whole_fea = torch.cat(
        (teacher_cls_tokens.unsqueeze(1), teacher_patch_tokens), dim=1)
    fea = soft_criterion(student_whole_fea, teacher_whole_fea)
    patch = soft_criterion(student_patch_tokens_masked,
                           teacher_patch_tokens_masked)
    return dict(
        loss_token=model.token_weight * token,
        loss_feature=model.feature_weight * fea,
        loss_patch=model.patch_weight * patch)


def test_proteus_matches_reference_and_trains(teacher_path):
    model = build(
        tiny_cfg('proteus', teacher_path, token_weight=0.5, patch_weight=2.))
    model.eval()
    inputs = views(batch=4)  # 2 images masked
    with torch.no_grad():
        model.mask_token.normal_()
        torch.manual_seed(7)
        losses = model.loss(inputs, None)
        ref = proteus_reference(model, inputs[0], seed=7)
    assert set(losses) == set(ref)
    for key in ref:
        torch.testing.assert_close(losses[key], ref[key], rtol=1e-5, atol=0)
        print('proteus max diff', key, (losses[key] - ref[key]).abs().item())
    check_step(model)


@pytest.mark.parametrize('options,key', [
    (dict(teacher_dims=64), 'teacher_dims'),
    (dict(student_dims=48), 'student_dims'),
    (dict(mask_ratio=0.), 'mask_ratio'),
    (dict(mask_probability=1.5), 'mask_probability'),
    (dict(decoder=dict(type='LinearDecoder')), 'decoder'),
])
def test_proteus_refuses(teacher_path, options, key):
    check_refused(tiny_cfg('proteus', teacher_path, **options), key)


# ------------------------------------------------------------------ TinyMIM
def tinymim_relations(layer, x):
    """TinyMIM@d084705 vit.py ``Block.forward(x, return_relation=True)``
    and ``Attention.forward`` (lines 43-51, 74-77) on an mmpretrain block:
    ``qkv(norm1(x))``, ``attn = softmax(q k^T * scale)``, ``vv =
    softmax(v v^T * scale)``, ``scale = head_dim ** -0.5``."""
    attn = layer.attn
    x = layer.ln1(x)
    B, N, C = x.shape
    num_heads = attn.num_heads
    qkv = attn.qkv(x).reshape(B, N, 3, num_heads,
                              C // num_heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    scale = (C // num_heads)**-0.5
    qk = ((q @ k.transpose(-2, -1)) * scale).softmax(dim=-1)
    vv = ((v @ v.transpose(-2, -1)) * scale).softmax(dim=-1)
    return qk, vv


def encoder_until_last_block(vit, img):
    """mmpretrain's embedding (class token first, position embedding,
    pre-norm) and every block but the last: what enters the 12th block of
    TinyMIM's ``forward_encoder`` (models_tinymim.py lines 66-86)."""
    x, grid = vit.patch_embed(img)
    x = torch.cat((vit.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
    x = x + resize_pos_embed(vit.pos_embed, vit.patch_resolution, grid,
                             vit.interpolate_mode, vit.num_extra_tokens)
    x = vit.pre_norm(vit.drop_after_pos(x))
    for layer in vit.layers[:-1]:
        x = layer(x)
    return x


def tinymim_reference(model, img):
    """TinyMIM@d084705 models_tinymim.py ``forward`` / ``forward_kd_loss``
    (lines 89-97): ``KLDivLoss(reduction='none')(pred.log(),
    teacher_out).sum(-1).mean()`` for the q-k and the v-v relations, the
    teacher's from the same block of models_teacher.py (``intermediate=12``
    of its ViT-B: the last)."""
    s_qk, s_vv = tinymim_relations(
        model.backbone.layers[-1],
        encoder_until_last_block(model.backbone, img))
    t_qk, t_vv = tinymim_relations(
        model.teacher.vit.layers[-1],
        encoder_until_last_block(model.teacher.vit, img))

    def forward_kd_loss(pred, teacher_out):
        loss = nn.KLDivLoss(reduction='none')(pred.log(), teacher_out).sum(-1)
        return loss.mean()

    return dict(
        loss_qk=model.qk_weight * forward_kd_loss(s_qk, t_qk),
        loss_vv=model.vv_weight * forward_kd_loss(s_vv, t_vv))


def test_tinymim_matches_reference_and_trains(teacher_path):
    model = build(tiny_cfg('tinymim', teacher_path, vv_weight=0.5))
    model.eval()
    inputs = views()
    with torch.no_grad():
        losses = model.loss(inputs, None)
        ref = tinymim_reference(model, inputs[0])
    assert set(losses) == set(ref)
    for key in ref:
        torch.testing.assert_close(losses[key], ref[key], rtol=1e-5, atol=0)
        print('tinymim max diff', key, (losses[key] - ref[key]).abs().item())
    check_step(model)


def test_tinymim_refuses_a_student_without_the_teacher_heads(teacher_path):
    cfg = tiny_cfg('tinymim', teacher_path)
    cfg.backbone.layer_cfgs = [dict(), dict(), dict(num_heads=2)]
    check_refused(cfg, 'backbone.layer_cfgs[-1].num_heads')
    check_refused(
        tiny_cfg('tinymim', teacher_path, student_dims=48), 'student_dims')


# ------------------------------------------------------------------ MaskedKD
def embedded(vit, img):
    """``patch_embed``, class token, ``+ pos_embed`` (MaskedKD@96d052d
    models_student.py lines 250-257, models_teacher.py lines 253-258), with
    mmpretrain's parts."""
    x, grid = vit.patch_embed(img)
    x = torch.cat((vit.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
    return x + resize_pos_embed(vit.pos_embed, vit.patch_resolution, grid,
                                vit.interpolate_mode, vit.num_extra_tokens)


def maskedkd_reference(model, img):
    """MaskedKD step by step as effl-lab/MaskedKD@96d052d writes it, in the
    feature form of docs/methods.md:

    * student (models_student.py lines 99-111, 127-133, 259-266): blocks,
      the last one returning ``attn = softmax(q k^T * scale)``, final norm,
      class token;
    * ``len_keep = topk(attn.mean(dim=1)[:, 0, 1:], len_num_keep).indices``
      (losses.py line 32), ``len_num_keep = int(L * keep_ratio)``;
    * teacher (models_teacher.py lines 253-274): after ``+ pos_embed`` the
      patch tokens are gathered at ``len_keep`` behind the class token,
      blocks, norm, class token;
    * the logit KL of losses.py lines 40-44 becomes ``nn.MSELoss()`` of the
      linearly projected student class token and the teacher's.
    """
    vit = model.backbone
    x = embedded(vit, img)
    for blk in vit.layers[:-1]:
        x = blk(x)
    last = vit.layers[-1]
    y = last.ln1(x)
    B, N, C = y.shape
    heads = last.attn.num_heads
    qkv = last.attn.qkv(y).reshape(B, N, 3, heads,
                                   C // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    attn = ((q @ k.transpose(-2, -1)) * (C // heads)**-0.5).softmax(dim=-1)
    y = last.attn.proj((attn @ v).transpose(1, 2).reshape(B, N, C))
    x = x + y
    x = x + last.ffn.layers(last.ln2(x))
    s_cls = vit.ln1(x)[:, 0]
    len_num_keep = int((N - 1) * model.keep_ratio)
    len_keep = torch.topk(attn.mean(dim=1)[:, 0, 1:], len_num_keep).indices

    t = embedded(model.teacher.vit, img)
    B, _, D = t.shape
    cls_save = t[:, 0, :].unsqueeze(dim=1)
    t = torch.gather(t[:, 1:, :], 1, len_keep.unsqueeze(-1).repeat(1, 1, D))
    t = torch.cat((cls_save, t), dim=1)
    for blk in model.teacher.vit.layers:
        t = blk(t)
    t_cls = model.teacher.vit.ln1(t)[:, 0]
    return dict(loss_masked_kd=model.loss_weight *
                nn.MSELoss()(model.head(s_cls), t_cls))


def test_maskedkd_matches_reference_and_trains(teacher_path):
    model = build(tiny_cfg('maskedkd', teacher_path, keep_ratio=0.25))
    model.eval()
    inputs = views()
    with torch.no_grad():
        losses = model.loss(inputs, None)
        ref = maskedkd_reference(model, inputs[0])
    assert set(losses) == set(ref)
    for key in ref:
        torch.testing.assert_close(losses[key], ref[key], rtol=1e-5, atol=0)
        print('maskedkd max diff', key, (losses[key] - ref[key]).abs().item())
    check_step(model)


@pytest.mark.parametrize('options,key', [
    (dict(teacher_dims=64), 'teacher_dims'),
    (dict(keep_ratio=0.), 'keep_ratio'),
    (dict(mimic_layers=(0, )), 'mimic_layers'),
])
def test_maskedkd_refuses(teacher_path, options, key):
    check_refused(tiny_cfg('maskedkd', teacher_path, **options), key)
