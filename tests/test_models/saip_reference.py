"""A step-by-step plain-torch reference of SAIP's public code
(stoa-xh91/SAIPv1 at fbb299c1e90c92250c7ea5a767f76b03e261eba5; read, not
copied): ``csl_vit_tiny_patch16`` (``CSLViTWrapper``), its losses and the
total of ``main_pretrain.py``, written as functions of a flat dict of
tensors named as mmdpal's ``SAIP`` names them (``backbone.*``, ``mid_norm``
= their ``inter_norm``, ``csm_head.*`` = their ``csm_decoder``, ...).

Line numbers are those of that commit:

- ``vision_transformer.py`` 56-82 (``Attention``: returns the query-key map
  and ``softmax(v v^T * scale)``), 105-123 (``Block``);
- ``models_pretrain.py`` 209-247 (``get_mask``,
  ``random_masking_with_ref_anchor``), 249-285 (``SAIPViT.forward``: 1-D
  position resize, masking after the position embedding, ``inter_norm``
  after block ``out_index``), 301-315 (``patchify``), 331-435
  (``CSLViTWrapper.forward``);
- ``pretrain_decoder.py`` 7-32 (``interpolate_pos_encoding``:
  ``scale_factor=(L / N, 1)`` bicubic), 90-134 (``CSMDecoder``), 136-170
  (``CSRDecoder``), 173-237 (``CSSDecoder``; timm 0.3.2 ``Block`` and
  ``vision_transformer.py`` 84-103 ``CrossAttentionBlock`` with
  ``nn.MultiheadAttention``);
- ``main_pretrain.py`` 294-307 (one batch, the total), 426-463 (the
  region: the anchor ``interpolate``d to the crop size), 465-534
  (``CSMLoss``, ``update_center``).
"""
import torch
import torch.nn.functional as F


def interpolate_pos_encoding(pos_embed, npatch):
    """pretrain_decoder.py 7-32 (with_cls_token=True)."""
    N = pos_embed.shape[1] - 1
    if npatch == N:
        return pos_embed
    cls, patch = pos_embed[:, 0], pos_embed[:, 1:]
    dim = pos_embed.shape[-1]
    patch = F.interpolate(
        patch.reshape(1, N, 1, dim).permute(0, 3, 1, 2),
        scale_factor=(npatch / N, 1),
        mode='bicubic')
    assert patch.shape[2] == npatch
    patch = patch.permute(0, 2, 3, 1).reshape(1, -1, dim)
    return torch.cat((cls.unsqueeze(0), patch), dim=1)


def layer_norm(x, p, key, eps=1e-6):
    return F.layer_norm(x, (x.shape[-1], ), p[key + '.weight'],
                        p[key + '.bias'], eps)


def linear(x, p, key):
    return F.linear(x, p[key + '.weight'], p.get(key + '.bias'))


def block(x, p, key, heads):
    """vision_transformer.py 56-82 + 105-123 (and timm 0.3.2's ``Block``,
    the same computation without the maps); mmpretrain names."""
    B, N, C = x.shape
    qkv = linear(layer_norm(x, p, key + '.ln1'), p, key + '.attn.qkv')
    q, k, v = qkv.reshape(B, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
    scale = (C // heads)**-0.5
    qk = ((q @ k.transpose(-2, -1)) * scale).softmax(dim=-1)
    vv = ((v @ v.transpose(-2, -1)) * scale).softmax(dim=-1)
    y = (qk @ v).transpose(1, 2).reshape(B, N, C)
    x = x + linear(y, p, key + '.attn.proj')
    h = layer_norm(x, p, key + '.ln2')
    h = linear(
        F.gelu(linear(h, p, key + '.ffn.layers.0.0')), p,
        key + '.ffn.layers.1')
    return x + h, [qk, vv]


def random_masking_with_ref_anchor(x, mask_ratio, anchor_size, hw_size):
    """models_pretrain.py 209-247 (the noise drawn here)."""
    B, L, D = x.shape
    len_keep = int(L * (1 - mask_ratio))
    La = anchor_size[0] * anchor_size[1]
    noise = torch.rand(B, La, device=x.device)
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    base_mask = torch.zeros([B, La])
    base_mask[:, :int(La * (1 - mask_ratio))] = 1.
    base_mask = torch.gather(base_mask, dim=1, index=ids_restore)
    base_mask = base_mask.view(B, 1, *anchor_size)
    mask = F.interpolate(base_mask, hw_size).flatten(1)
    ids_shuffle = torch.argsort(1 - mask, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    x = torch.gather(x, 1, ids_keep.unsqueeze(-1).repeat(1, 1, D))
    return x, [base_mask, 1 - mask], ids_restore


def saip_vit(x, p, pre, arch, mask_ratio=0., intermediate_only=False):
    """models_pretrain.py 249-285: ``(outs, mask, ids_restore, attn)``;
    outs = [inter_norm(block out_index), norm(last)]."""
    ps = arch['patch']
    ph, pw = x.shape[2] // ps, x.shape[3] // ps
    x = F.conv2d(
        x,
        p[pre + 'backbone.patch_embed.projection.weight'],
        p[pre + 'backbone.patch_embed.projection.bias'],
        stride=ps)
    x = x.flatten(2).transpose(1, 2)
    pos = interpolate_pos_encoding(p[pre + 'backbone.pos_embed'], x.shape[1])
    x = x + pos[:, 1:, :]
    mask = ids_restore = None
    if mask_ratio > 0.:
        x, mask, ids_restore = random_masking_with_ref_anchor(
            x, mask_ratio, arch['anchor'], (ph, pw))
    cls = p[pre + 'backbone.cls_token'] + pos[:, :1, :]
    x = torch.cat((cls.expand(x.shape[0], -1, -1), x), dim=1)
    outs = []
    for i in range(arch['depth']):
        x, attn = block(x, p, f'{pre}backbone.layers.{i}', arch['heads'])
        if i == arch['mid']:
            outs.append(layer_norm(x, p, pre + 'mid_norm'))
            if intermediate_only:
                return outs, mask, ids_restore, attn
    outs.append(layer_norm(x, p, pre + 'backbone.ln1'))
    return outs, mask, ids_restore, attn


def csm_decoder(x, p, pre):
    """pretrain_decoder.py 90-134 (nlayers=3, weight-normed last layer with
    g = 1 frozen)."""
    x = F.gelu(linear(x, p, pre + 'csm_head.mlp.0'))
    x = F.gelu(linear(x, p, pre + 'csm_head.mlp.2'))
    x = linear(x, p, pre + 'csm_head.mlp.4')
    x = F.normalize(x, dim=-1, p=2)
    v = p[pre + 'csm_head.last_weight']
    w = torch._weight_norm(v, v.new_ones(v.shape[0], 1), 0)
    return F.linear(x, w)


def csr_decoder(vis_x, masked_x, ids_restore, p, arch):
    """pretrain_decoder.py 136-170."""
    x = torch.cat([vis_x, masked_x], dim=1)
    x = linear(x, p, 'csr_decoder.embed')
    vis_x = x[:, :vis_x.shape[1], :]
    masked_x = x[:, vis_x.shape[1]:, :]
    mask_tokens = p['csr_decoder.mask_token'].repeat(
        masked_x.shape[0], ids_restore.shape[1] + 1 - masked_x.shape[1], 1)
    m_x_ = torch.cat([masked_x[:, 1:, :], mask_tokens], dim=1)
    m_x_ = torch.gather(
        m_x_, 1,
        ids_restore.unsqueeze(-1).repeat(1, 1, masked_x.shape[2]))
    m_x_ = torch.cat([masked_x[:, :1, :], vis_x[:, :1, :], m_x_], dim=1)
    x = m_x_ + interpolate_pos_encoding(p['csr_decoder.pos_embed'],
                                        m_x_.shape[1] - 1)
    for i in range(arch['csr_depth']):
        x, _ = block(x, p, f'csr_decoder.blocks.{i}', arch['csr_heads'])
    x = layer_norm(x, p, 'csr_decoder.norm')
    return linear(x, p, 'csr_decoder.pred')[:, 2:, :]


def multihead_attention(q, k, v, p, key, heads):
    """torch's ``nn.MultiheadAttention`` (batch_first, packed (3D, D)
    in-projection), by hand."""
    D = q.shape[-1]
    w, b = p[key + '.in_proj_weight'], p[key + '.in_proj_bias']
    q, k, v = (F.linear(t, w[i * D:(i + 1) * D], b[i * D:(i + 1) * D])
               for i, t in enumerate((q, k, v)))

    def heads_of(t):
        return t.reshape(t.shape[0], t.shape[1], heads,
                         D // heads).transpose(1, 2)

    q, k, v = heads_of(q), heads_of(k), heads_of(v)
    a = ((q * (D // heads)**-0.5) @ k.transpose(-2, -1)).softmax(-1)
    y = (a @ v).transpose(1, 2).reshape(q.shape[0], -1, D)
    return linear(y, p, key + '.out_proj')


def css_decoder(x, ref_x, p, arch):
    """pretrain_decoder.py 213-237 (+ vision_transformer.py 96-103)."""
    b, c, h, w = ref_x.shape
    _ref_x = ref_x.view(b, c, -1).permute(0, 2, 1)
    kernel_x = linear(x, p, 'css_decoder.query_embed')
    for i in range(2):
        kernel_x, _ = block(kernel_x, p, f'css_decoder.blocks.{i}',
                            arch['css_heads'])
    kernel_x = kernel_x[:, 0, :].unsqueeze(1)
    tgt_x = layer_norm(
        linear(_ref_x, p, 'css_decoder.key_embed'), p, 'css_decoder.key_norm')
    # CrossAttentionBlock
    query = layer_norm(kernel_x, p, 'css_decoder.cross_block.norm1')
    y = kernel_x + multihead_attention(query, tgt_x, tgt_x, p,
                                       'css_decoder.cross_block.attn',
                                       arch['css_heads'])
    h2 = layer_norm(y, p, 'css_decoder.cross_block.norm2')
    y = y + linear(
        F.gelu(linear(h2, p, 'css_decoder.cross_block.ffn.0')), p,
        'css_decoder.cross_block.ffn.2')
    mask_kernel = linear(
        layer_norm(y, p, 'css_decoder.query_norm'), p, 'css_decoder.kernel')
    m = ref_x
    for i in range(4):
        k = 'css_decoder.mask_head.' + str(2 * i)
        m = F.gelu(
            F.conv2d(m, p[k + '.weight'], p[k + '.bias'], padding=i and 1))
    return torch.bmm(mask_kernel, m.flatten(2))


def patchify(imgs, ps):
    """models_pretrain.py 301-315."""
    h, w = imgs.shape[2] // ps, imgs.shape[3] // ps
    x = imgs.reshape(imgs.shape[0], 3, h, ps, w, ps)
    x = torch.einsum('nchpwq->nhwpqc', x)
    return x.reshape(imgs.shape[0], h * w, ps**2 * 3)


def csl_forward(samples, p, arch, scales, is_student=True, meta=None):
    """models_pretrain.py 331-435; ``samples`` as main_pretrain.py 294-299
    builds them; ``scales``: the two ``random.choice`` draws that are used
    (for the 7th crop and the region)."""
    pre = '' if is_student else 'teacher.module.'
    ps = arch['patch']
    base_imgs = samples[0]
    bs = base_imgs.shape[0]
    ref_inputs = samples[-3]
    msc_imgs = samples[2:-3]
    css_mask = samples[-2:]
    base_inputs = torch.cat([base_imgs, samples[1]])
    ph, pw = ref_inputs.size(2) // ps, ref_inputs.size(3) // ps
    css_inst_mask = F.interpolate(css_mask[0].unsqueeze(1), (ph, pw))
    css_roi_mask = F.interpolate(css_mask[1].unsqueeze(1), (ph, pw))
    out = {}
    if not is_student:
        r_feats = saip_vit(ref_inputs, p, pre, arch)[0]
        b_feats, _, _, last_atten = saip_vit(base_inputs, p, pre, arch)
        out['ref_feats'] = r_feats[0]
        out['csm_preds'] = csm_decoder(b_feats[1][:, 0, :], p, pre)
        out['qkv_atten'] = last_atten
        return out
    b_feats, _, _, last_atten = saip_vit(base_inputs, p, pre, arch)
    n = len(msc_imgs)
    msc_outs = [
        saip_vit(torch.cat(msc_imgs[:n - 2]), p, pre, arch)[0][1][:, 0, :]
    ]
    for i, s_img in enumerate(msc_imgs[n - 2:], start=n - 2):
        csi_inputs = F.interpolate(s_img, scale_factor=scales[i - (n - 2)])
        csi_feats = saip_vit(csi_inputs, p, pre, arch)[0]
        msc_outs.append(csi_feats[1][:, 0, :])
        if i == n - 2:
            css_region_feats = csi_feats[0]
    out['csm_preds'] = csm_decoder(
        torch.cat([b_feats[1][:, 0, :]] + msc_outs), p, pre)
    # CSR
    csr_inputs = F.interpolate(samples[1], scale_factor=1.25)
    masked_feats, mask, ids_restore, _ = saip_vit(
        csr_inputs, p, pre, arch, mask_ratio=0.75, intermediate_only=True)
    csr_outs = csr_decoder(b_feats[0][:bs], masked_feats[0], ids_restore, p,
                           arch)
    csr_target = patchify(csr_inputs, ps)
    mean = csr_target.mean(dim=-1, keepdim=True)
    var = csr_target.var(dim=-1, keepdim=True)
    csr_target = (csr_target - mean) / (var + 1.e-6)**.5
    csr_loss = ((csr_outs - csr_target)**2).mean(dim=-1)
    out['csr_loss'] = (csr_loss * mask[1]).sum() / mask[1].sum()
    # CSS
    r_feats = meta['ref_feats']
    _r_feats = r_feats[:, 1:, :].reshape(bs, ph, pw, -1).permute(0, 3, 1, 2)
    inst = css_decoder(b_feats[0][:bs], _r_feats, p, arch)
    out['css_inst_loss'] = F.binary_cross_entropy_with_logits(
        inst.reshape(-1),
        css_inst_mask.flatten(1).reshape(-1))
    roi = css_decoder(css_region_feats, _r_feats, p, arch)
    out['css_roi_loss'] = F.binary_cross_entropy_with_logits(
        roi.reshape(-1),
        css_roi_mask.flatten(1).reshape(-1))
    out['qkv_atten'] = last_atten
    return out


def csm_loss(s_reps,
             s_atten,
             t_reps,
             t_atten,
             center,
             ncrops,
             teacher_temp=0.04,
             student_temp=0.1,
             center_momentum=0.9):
    """main_pretrain.py 465-534 (one process: the all-reduce is the
    identity). Returns (rep loss, attention loss, new centre)."""
    s_reps = (s_reps / student_temp).chunk(ncrops)
    s_qk, s_vv = s_atten[0].chunk(2), s_atten[1].chunk(2)
    teacher_out = t_reps
    t_reps = F.softmax((t_reps - center) / teacher_temp, dim=-1)
    t_reps = t_reps.detach().chunk(2)
    t_qk, t_vv = t_atten[0].detach().chunk(2), t_atten[1].detach().chunk(2)
    rep, att, n_rep, n_att, eps = 0, 0, 0, 0, 1e-10
    kl = torch.nn.KLDivLoss(reduction='none')
    for iq, q in enumerate(t_reps):
        for v in range(len(s_reps)):
            if v < 2 and v == iq:
                qk_loss = kl((s_qk[v] + eps).log(), t_qk[iq] + eps).sum(-1)
                vv_loss = kl((s_vv[v] + eps).log(), t_vv[iq] + eps).sum(-1)
                att += qk_loss.mean() + vv_loss.mean()
                n_att += 1
            else:
                rep += torch.sum(
                    -q * F.log_softmax(s_reps[v], dim=-1), dim=-1).mean()
                n_rep += 1
    batch_center = torch.sum(
        teacher_out, dim=0, keepdim=True) / len(teacher_out)
    new_center = center * center_momentum + batch_center * (1 -
                                                            center_momentum)
    return rep / n_rep, att / n_att, new_center


def total_loss(samples, p, arch, scales, center):
    """main_pretrain.py 303-307: teacher, student, the sum of five terms."""
    pred_t = csl_forward(samples, p, arch, scales, is_student=False)
    pred_s = csl_forward(samples, p, arch, scales, meta=pred_t)
    rep, att, new_center = csm_loss(
        pred_s['csm_preds'],
        pred_s['qkv_atten'],
        pred_t['csm_preds'],
        pred_t['qkv_atten'],
        center,
        ncrops=len(samples) - 3)
    terms = dict(
        csm_rep_loss=rep,
        csm_att_loss=att,
        csr_loss=pred_s['csr_loss'],
        css_inst_loss=pred_s['css_inst_loss'],
        css_roi_loss=pred_s['css_roi_loss'])
    return terms, new_center
