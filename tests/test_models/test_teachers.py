"""The frozen teacher: strict loading, frozen, attention, targets, grids."""
import pytest
import torch
from mmdpal_testing import (TINY_TEACHER_ARCH, cubic_resize_1d,
                            save_tiny_teacher)
from mmpretrain.models import VisionTransformer

from mmdpal.models import ViTTeacher, pca_batch_shape_mask, pca_shape_mask


def vit_cfg(**kw):
    cfg = dict(
        type='mmpretrain.VisionTransformer',
        arch=TINY_TEACHER_ARCH,
        img_size=(64, 32),
        patch_size=8)
    cfg.update(kw)
    return cfg


@pytest.fixture
def teacher_ckpt(tmp_path):
    return save_tiny_teacher(str(tmp_path / 'teacher.pth'))


def test_teacher_loads_strictly_and_is_frozen(teacher_ckpt):
    teacher = ViTTeacher(vit_cfg(), teacher_ckpt)
    saved = torch.load(teacher_ckpt, weights_only=True)
    for k, v in teacher.vit.state_dict().items():
        assert torch.equal(v, saved[k]), k
    assert all(not p.requires_grad for p in teacher.parameters())
    teacher.train()
    assert not teacher.training and not teacher.vit.training
    # the runner calls init_weights(): it must not touch the loaded weights
    teacher.init_weights()
    assert torch.equal(teacher.vit.pos_embed, saved['pos_embed'])
    out = teacher(torch.randn(2, 3, 64, 32), (8, 4))
    assert not out.cls_token.requires_grad  # run under no_grad


def test_missing_teacher_file_names_it(tmp_path):
    path = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        ViTTeacher(vit_cfg(), path)
    # a checkpoint left unset in the config: the same error, not os.stat's
    with pytest.raises(FileNotFoundError, match='not found: None'):
        ViTTeacher(vit_cfg(), None)


def test_teacher_keys_that_do_not_match_are_listed(tmp_path, teacher_ckpt):
    state = torch.load(teacher_ckpt, weights_only=True)
    del state['layers.1.attn.qkv.weight']
    state['head.weight'] = torch.zeros(3)
    state['pos_embed'] = state['pos_embed'][:, :5]
    bad = str(tmp_path / 'bad.pth')
    torch.save(state, bad)
    with pytest.raises(KeyError) as e:
        ViTTeacher(vit_cfg(), bad)
    msg = str(e.value)
    assert 'layers.1.attn.qkv.weight' in msg and 'head.weight' in msg
    assert 'pos_embed' in msg and '1 missing' in msg


def test_last_block_attention_equals_plain_recomputation(teacher_ckpt):
    torch.manual_seed(0)
    teacher = ViTTeacher(vit_cfg(), teacher_ckpt)
    img = torch.randn(2, 3, 64, 32)
    out = teacher(img, (8, 4))
    _, attention, _ = teacher.tokens_and_attention(img)

    # plain recomputation from the same weights: run mmpretrain's own ViT
    # (fused attention everywhere) up to the last block, then q.k^T by hand
    vit = VisionTransformer(
        arch=TINY_TEACHER_ARCH,
        img_size=(64, 32),
        patch_size=8,
        out_type='raw')
    vit.eval()
    vit.load_state_dict(torch.load(teacher_ckpt, weights_only=True))
    captured = {}
    last = vit.layers[-1]
    last.register_forward_pre_hook(lambda m, a: captured.update(x=a[0]))
    with torch.no_grad():
        final = vit(img)[0]
    x = last.ln1(captured['x'])
    w, b = last.attn.qkv.weight, last.attn.qkv.bias
    C = x.shape[-1]
    heads = TINY_TEACHER_ARCH['num_heads']
    q = (x @ w[:C].T + b[:C]).unflatten(-1, (heads, -1)).transpose(1, 2)
    k = (x @ w[C:2 * C].T + b[C:2 * C]).unflatten(-1,
                                                  (heads, -1)).transpose(1, 2)
    attn = torch.softmax(q @ k.transpose(-2, -1) / (C // heads)**0.5, dim=-1)
    torch.testing.assert_close(attention, attn, rtol=1e-5, atol=1e-6)
    # the explicit last block gives the same tokens as mmpretrain's forward
    torch.testing.assert_close(
        out.cls_token, final[:, 0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        out.patch_tokens, final[:, 1:], rtol=1e-5, atol=1e-5)
    # paper targets: M_shape = head-mean class attention, min-max scaled
    cls_attn = attn.mean(1)[:, 0, 1:]
    lo, hi = cls_attn.min(1, keepdim=True)[0], cls_attn.max(1, keepdim=True)[0]
    torch.testing.assert_close(out.shape_mask, (cls_attn - lo) / (hi - lo))
    rel = attn.mean(1)[:, 1:, 1:]
    torch.testing.assert_close(out.relation, rel / rel.sum(-1, keepdim=True))


def test_grid_alignment_for_another_patch_size(tmp_path):
    """A patch-14 teacher against a patch-8 student grid (8 x 4 tokens)."""
    vit = VisionTransformer(
        arch=TINY_TEACHER_ARCH,
        img_size=(56, 28),
        patch_size=14,
        out_type='raw')
    path = str(tmp_path / 't14.pth')
    torch.save(vit.state_dict(), path)
    img = torch.randn(2, 3, 64, 32)
    grids = []
    resize = ViTTeacher(
        vit_cfg(img_size=(56, 28), patch_size=14), path, align='resize_input')
    resize.vit.patch_embed.register_forward_hook(
        lambda m, a, o: grids.append(tuple(o[1])))
    out = resize(img, (8, 4))
    assert grids[-1] == (8, 4)  # teacher ran at 112x56
    interp = ViTTeacher(
        vit_cfg(img_size=(56, 28), patch_size=14),
        path,
        align='interpolate_tokens')
    interp.vit.patch_embed.register_forward_hook(
        lambda m, a, o: grids.append(tuple(o[1])))
    out2 = interp(img, (8, 4))
    assert grids[-1] == (4, 2)  # ran at 56x28 (4x2 grid)
    for o in (out, out2):
        assert o.patch_tokens.shape == (2, 32, 48)
        assert o.shape_mask.shape == (2, 32)
        assert o.shape_mask.min() >= 0 and o.shape_mask.max() <= 1
        torch.testing.assert_close(o.relation.sum(-1), torch.ones(2, 32))


def test_authors_variants_pca_mask_and_similarity(teacher_ckpt):
    torch.manual_seed(0)
    teacher = ViTTeacher(
        vit_cfg(), teacher_ckpt, shape_mask='pca', relation='similarity')
    out = teacher(torch.randn(2, 3, 64, 32), (8, 4))
    p = out.patch_tokens
    sim = torch.softmax(p @ p.transpose(1, 2) / p.shape[-1]**0.5, -1)
    torch.testing.assert_close(out.relation, sim)
    assert out.shape_mask.amin(1).abs().max() < 1e-6
    torch.testing.assert_close(out.shape_mask.amax(1), torch.ones(2))


def test_pca_mask_sign_is_fixed_by_the_reference():
    torch.manual_seed(0)
    # foreground tokens (first 6) differ from background along one direction
    tokens = torch.randn(1, 16, 8) * 0.05
    tokens[:, :6, 0] += 3.0
    ref = torch.zeros(1, 16)
    ref[:, :6] = 1.0
    m1 = pca_shape_mask(tokens, ref)
    m2 = pca_shape_mask(-tokens, ref)  # flipped features, same foreground
    for m in (m1, m2):
        assert m[0, :6].min() > 0.9 and m[0, 6:].max() < 0.1


def test_pca_mask_matches_svd_first_component():
    torch.manual_seed(0)
    tokens = torch.randn(3, 20, 6) @ torch.diag(
        torch.tensor([4., 1., .5, .3, .2, .1]))
    ref = torch.randn(3, 20)
    mask = pca_shape_mask(tokens, ref)
    x = tokens - tokens.mean(1, keepdim=True)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    pc1 = torch.einsum('blc,bc->bl', x, vh[:, 0])
    for b in range(3):
        p = pc1[b] * torch.sign((pc1[b] * (ref[b] - ref[b].mean())).sum())
        expected = (p - p.min()) / (p.max() - p.min())
        torch.testing.assert_close(mask[b], expected, rtol=1e-4, atol=1e-4)


def authors_pca_mask(patch_tokens):
    """Their teacher's code, ``ExpertViT.forward``: scikit-learn's PCA of
    the B*L tokens of the batch, then ``minmax_scale``."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import minmax_scale
    B, N, L = patch_tokens.shape
    mask = PCA(n_components=1).fit_transform(
        patch_tokens.reshape(B * N, L).cpu().detach().numpy())
    return torch.tensor(minmax_scale(mask)).reshape(B, N).float()


@pytest.mark.parametrize('batch', [2, 12])
def test_pca_batch_mask_is_their_code(batch):
    """One PCA over the whole batch, min-max over the batch, scikit-learn's
    sign (the component's largest loading positive): their computation, for
    a batch small enough for scikit-learn's full SVD (2 x 32 tokens) and
    one large enough for its covariance solver (12 x 32 >= 10 x 24
    channels, as their 256 x 128 tokens of 768 channels)."""
    torch.manual_seed(batch)
    scale = torch.linspace(3, 0.2, 24)
    tokens = (torch.randn(batch, 32, 24) * scale).half()  # their fp16
    mask = pca_batch_shape_mask(tokens)
    torch.testing.assert_close(
        mask, authors_pca_mask(tokens), rtol=1e-5, atol=1e-5)
    assert mask.min() == 0 and mask.max() == 1  # over the batch ...
    assert mask.amin(1).max() > 0 or mask.amax(1).min() < 1  # ... not each
    # the sign follows the channels, not the image: the same tokens negated
    # (as another teacher could encode them) give the inverted mask,
    # foreground and background swapped ('pca' keeps them, its sign
    # following the class-token attention)
    torch.testing.assert_close(
        pca_batch_shape_mask(-tokens), 1 - mask, rtol=1e-5, atol=1e-5)


def test_pca_batch_mask_in_the_teacher(teacher_ckpt):
    teacher = ViTTeacher(vit_cfg(), teacher_ckpt, shape_mask='pca_batch')
    torch.manual_seed(1)
    out = teacher(torch.randn(3, 3, 64, 32), (8, 4))
    torch.testing.assert_close(out.shape_mask,
                               authors_pca_mask(out.patch_tokens))


def test_no_shape_mask_weighs_every_patch_one(teacher_ckpt):
    """shape_mask='none' (the demo's token-regression baseline): Eq. 5
    becomes the plain MSE of every patch token."""
    from mmdpal.models.losses import LocalAlignLoss
    teacher = ViTTeacher(vit_cfg(), teacher_ckpt, shape_mask='none')
    torch.manual_seed(1)
    out = teacher(torch.randn(3, 3, 64, 32), (8, 4))
    assert torch.equal(out.shape_mask, torch.ones(3, 32))
    student = torch.randn_like(out.patch_tokens)
    torch.testing.assert_close(
        LocalAlignLoss()(student, out.patch_tokens, out.shape_mask),
        torch.nn.functional.mse_loss(student, out.patch_tokens))


def test_targets_are_computed_only_when_asked(teacher_ckpt):
    teacher = ViTTeacher(vit_cfg(), teacher_ckpt, shape_mask='pca')
    img = torch.randn(2, 3, 64, 32)
    full = teacher(img, (8, 4))
    single = teacher(img, (8, 4), with_relation=False)
    multi = teacher(img, (8, 4), with_shape_mask=False)
    assert single.relation is None and multi.shape_mask is None
    torch.testing.assert_close(single.shape_mask, full.shape_mask)
    torch.testing.assert_close(multi.relation, full.relation)


@pytest.mark.parametrize('relation', ['attention', 'similarity'])
def test_relation_only_skips_the_tokens(teacher_ckpt, relation):
    """with_tokens=False (the multi-person view) gives the same relation and
    no tokens; with the attention relation the last block stops at its
    attention map, so the ViT's final norm never runs."""
    teacher = ViTTeacher(vit_cfg(), teacher_ckpt, relation=relation)
    img = torch.randn(2, 3, 64, 32)
    full = teacher(img, (8, 4), with_shape_mask=False)
    calls = []
    hook = teacher.vit.ln1.register_forward_hook(lambda *args: calls.append(1))
    only = teacher(img, (8, 4), with_shape_mask=False, with_tokens=False)
    hook.remove()
    assert only.cls_token is None and only.patch_tokens is None
    assert len(calls) == (relation == 'similarity')
    torch.testing.assert_close(only.relation, full.relation)


# --------------------------------------------- the authors' variants ----
def test_dino_scale_factor_pos_embed(tmp_path, teacher_ckpt):
    """The authors' teacher resize: bicubic with scale_factor (h + 0.1) / h0,
    (w + 0.1) / w0 of the 8x4 grid, here to the 8x8 grid of a 64x64 view."""
    torch.manual_seed(0)
    state = torch.load(teacher_ckpt, weights_only=True)
    state['pos_embed'] = torch.randn_like(state['pos_embed'])
    teacher_ckpt = str(tmp_path / 'pos.pth')
    torch.save(state, teacher_ckpt)
    dino = ViTTeacher(
        vit_cfg(), teacher_ckpt, pos_embed_resize='dino_scale_factor')
    size = ViTTeacher(vit_cfg(), teacher_ckpt)
    pos = dino.vit.pos_embed[0]  # (1 + 32, C)
    grid = pos[1:].reshape(8, 4, -1)
    rows = cubic_resize_1d(grid, 8, (8 + 0.1) / 8)  # (8, 4, C)
    ref = cubic_resize_1d(rows.transpose(0, 1), 8, (8 + 0.1) / 4)
    ref = torch.cat((pos[:1], ref.transpose(0, 1).reshape(64, -1)))
    # the teacher's tokens = a plain ViT built at 64x64 with that embedding
    vit = VisionTransformer(
        arch=TINY_TEACHER_ARCH,
        img_size=(64, 64),
        patch_size=8,
        out_type='raw')
    vit.eval()
    state['pos_embed'] = ref[None]
    vit.load_state_dict(state)
    img = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = vit(img)[0]
    tokens, _, _ = dino.tokens_and_attention(img)
    torch.testing.assert_close(tokens, expected, rtol=1e-5, atol=1e-5)
    # not the resize to the target size
    other, _, _ = size.tokens_and_attention(img)
    assert (other - tokens).abs().max() > 1e-3
    # at the checkpoint's own grid nothing is resized
    img = torch.randn(1, 3, 64, 32)
    torch.testing.assert_close(
        dino.tokens_and_attention(img)[0],
        size.tokens_and_attention(img)[0])


def test_relation_with_the_class_token(teacher_ckpt):
    """Official mode: Eq. 3 over all 1 + L tokens of the teacher."""
    teacher = ViTTeacher(vit_cfg(), teacher_ckpt, relation='similarity')
    img = torch.randn(2, 3, 64, 32)
    out = teacher(img, (8, 4), relation_with_cls_token=True)
    tokens, attn, _ = teacher.tokens_and_attention(img)
    sim = torch.softmax(tokens @ tokens.transpose(1, 2) / 48**0.5, -1)
    assert out.relation.shape == (2, 33, 33)
    torch.testing.assert_close(out.relation, sim)
    paper = ViTTeacher(vit_cfg(), teacher_ckpt)
    out = paper(img, (8, 4), relation_with_cls_token=True)
    torch.testing.assert_close(out.relation, attn.mean(1))


@pytest.mark.parametrize('key,value', [('align', 'crop'),
                                       ('shape_mask', 'saliency'),
                                       ('relation', 'gram'),
                                       ('pos_embed_resize', 'bilinear')])
def test_bad_teacher_options_fail_at_build(teacher_ckpt, key, value):
    with pytest.raises(ValueError, match=f"{key}='{value}': use one of"):
        ViTTeacher(vit_cfg(), teacher_ckpt, **{key: value})
