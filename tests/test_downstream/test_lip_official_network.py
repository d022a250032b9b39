"""The official LIP network (configs/downstream/mmseg/*_lip-*_official.py)
against a step-by-step reference of the authors' (stoa-xh91/
Human-centric-Vision-Perception, HumanParsing/): networks/
vision_transformer.py ``VisionTransformerHP`` (its loader and forward),
networks/AugmentCE2P.py (``PSPModule``, ``Edge_Module``, ``Decoder_Module``,
the fusion) and utils/criterion.py ``CriterionAll``, written below as plain
torch functions from the facts of their code and fed the same weights (in
their parameter names) and the same input as ours.

Also their test geometry (datasets/datasets.py ``LIPDataValSet``,
utils/transforms.py ``transform_parsing``) on a portrait and a landscape
image, and the official config as mmseg builds it.
"""
import os.path as osp
import re

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdpal_testing import REPO
from mmengine.config import Config
from mmpretrain.models import VisionTransformer
from test_official_parts import their_affine

from mmdpal.datasets.transforms import SCHPAffineFit
from mmdpal.models import CE2PHead, CE2PLoss, ResampledPosViT
from mmdpal.models.heads.ce2p_head import fit_back
from mmdpal.models.utils import StrictPretrained

OFFICIAL = osp.join(REPO, 'configs', 'downstream', 'mmseg',
                    'dpal-vit-ti_ce2p_8xb12-150e_lip-576x384_official.py')
DIMS, HEADS, LAST_HEADS, DEPTH = 24, 3, 6, 12  # the official ViT-Ti, shrunk
TAPS = (3, 7, 11)  # their (i + 1) % 4 == 0
CLASSES = 6
EPS_LN, EPS_BN = 1e-6, 1e-5
UP = dict(mode='bilinear', align_corners=True)


# ------------------------------------------------ their network, by hand ----
def ref_load_pos_embed(pos, num_patches):
    """VisionTransformerHP.init_weights, a pos_embed of another length: the
    patch part (1, L_0, C) taken as a 1 x L_0 x C image and resized
    bilinearly to (num_patches, C), the class slot kept."""
    patches = F.interpolate(
        pos[:, 1:].unsqueeze(0),
        size=(num_patches, pos.shape[-1]),
        mode='bilinear')[0]
    return torch.cat([pos[:, :1], patches], 1)


def ref_pos_for_input(pos, img_size, patch, H, W):
    """VisionTransformerHP.interpolate_pos_encoding (DINO's): unchanged only
    when the input is img_size; else the img_size grid resized bicubically
    with scale_factor=((H // p + 0.1) / OH, (W // p + 0.1) / OW)."""
    if (H, W) == tuple(img_size):
        return pos
    OH, OW = img_size[0] // patch, img_size[1] // patch
    h0, w0 = H // patch + 0.1, W // patch + 0.1
    grid = pos[:, 1:].reshape(1, OH, OW, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=(h0 / OH, w0 / OW), mode='bicubic')
    assert grid.shape[-2:] == (int(h0), int(w0))
    return torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).flatten(1, 2)], 1)


def ref_block(w, i, x, heads):
    """Their Block: x + attn(norm1(x)), then x + mlp(norm2(x)); the
    attention's q, k, v from one qkv Linear split (3, heads, C / heads)."""
    p = f'blocks.{i}.'
    B, N, C = x.shape
    y = F.layer_norm(x, (C, ), w[p + 'norm1.weight'], w[p + 'norm1.bias'],
                     EPS_LN)
    qkv = F.linear(y, w[p + 'attn.qkv.weight'], w[p + 'attn.qkv.bias'])
    q, k, v = qkv.reshape(B, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
    attn = (q @ k.transpose(-2, -1) * (C // heads)**-0.5).softmax(-1)
    y = (attn @ v).transpose(1, 2).reshape(B, N, C)
    x = x + F.linear(y, w[p + 'attn.proj.weight'], w[p + 'attn.proj.bias'])
    y = F.layer_norm(x, (C, ), w[p + 'norm2.weight'], w[p + 'norm2.bias'],
                     EPS_LN)
    y = F.linear(
        F.gelu(F.linear(y, w[p + 'mlp.fc1.weight'], w[p + 'mlp.fc1.bias'])),
        w[p + 'mlp.fc2.weight'], w[p + 'mlp.fc2.bias'])
    return x + y


def ref_vit_hp(w, img, img_size=(224, 224), patch=16, stream_norm=True):
    """VisionTransformerHP.forward up to the head: patch embedding, class
    token, position embedding; after every 4th block ``x = norm[j](x)``,
    the normed stream tapped (``stream_norm=False``: the norm on the tap
    only, the stream left as it is: what must differ). Returns the three
    maps (B, C, H / p, W / p)."""
    B, _, H, W = img.shape
    x = F.conv2d(
        img,
        w['patch_embed.proj.weight'],
        w['patch_embed.proj.bias'],
        stride=patch).flatten(2).transpose(1, 2)
    x = torch.cat([w['cls_token'].expand(B, -1, -1), x], 1)
    x = x + ref_pos_for_input(w['pos_embed'], img_size, patch, H, W)
    outs = []
    for i in range(DEPTH):
        x = ref_block(w, i, x, LAST_HEADS if i == DEPTH - 1 else HEADS)
        if (i + 1) % 4 == 0:
            j = len(outs)
            normed = F.layer_norm(x, (DIMS, ), w[f'norm.{j}.weight'],
                                  w[f'norm.{j}.bias'], EPS_LN)
            outs.append(normed)
            if stream_norm:
                x = normed
    return [
        o[:, 1:].reshape(B, H // patch, W // patch, -1).permute(0, 3, 1, 2)
        for o in outs
    ]


def ref_bn_relu(w, p, x, relu=True):
    """BatchNorm2d in eval mode (running statistics), then ReLU: their
    ``InPlaceABNSync`` (BatchNorm2d + ReLU)."""
    x = F.batch_norm(x, w[p + 'running_mean'], w[p + 'running_var'],
                     w[p + 'weight'], w[p + 'bias'], False, 0., EPS_BN)
    return F.relu(x) if relu else x


def ref_conv(w, p, x, padding=0):
    return F.conv2d(x, w[p + 'weight'], w.get(p + 'bias'), padding=padding)


def ref_ce2p(w, outs):
    """VisionTransformerHP.forward after the backbone, with AugmentCE2P's
    modules: the block-4 map up 4x; PSPModule (pool to 1, 2, 3, 6, 1x1
    conv-BN-ReLU, up, concatenated with the input, 3x3 conv-BN-ReLU) on
    block 12; Decoder_Module (1x1 of the context up to block 4's size, 1x1
    of block 4, concatenated, two 1x1 conv-BN-ReLU, 1x1 to classes);
    Edge_Module (1x1 conv-BN-ReLU per input, the shared 3x3 conv4 on each,
    all up to block 4's size, conv5 on the three edge maps); fushion (1x1
    conv-BN-ReLU, Dropout2d, 1x1). Returns parsing, fusion, edge logits."""
    x1 = F.interpolate(outs[0], scale_factor=4, **UP)
    x2, x3 = outs[1], outs[2]
    h, w_ = x3.shape[2:]
    priors = []
    for k, size in enumerate((1, 2, 3, 6)):
        p = f'context_encoding.stages.{k}.'
        y = ref_conv(w, p + '1.', F.adaptive_avg_pool2d(x3, size))
        priors.append(
            F.interpolate(ref_bn_relu(w, p + '2.0.', y), size=(h, w_), **UP))
    y = ref_conv(
        w,
        'context_encoding.bottleneck.0.',
        torch.cat(priors + [x3], 1),
        padding=1)
    context = ref_bn_relu(w, 'context_encoding.bottleneck.1.0.', y)
    # Decoder_Module(xt=context, xl=x1)
    size = x1.shape[2:]
    xt = ref_bn_relu(w, 'decoder.conv1.1.0.',
                     ref_conv(w, 'decoder.conv1.0.', context))
    xt = F.interpolate(xt, size=size, **UP)
    xl = ref_bn_relu(w, 'decoder.conv2.1.0.',
                     ref_conv(w, 'decoder.conv2.0.', x1))
    y = torch.cat([xt, xl], 1)
    y = ref_bn_relu(w, 'decoder.conv3.1.0.', ref_conv(w, 'decoder.conv3.0.',
                                                      y))
    parsing_fea = ref_bn_relu(w, 'decoder.conv3.3.0.',
                              ref_conv(w, 'decoder.conv3.2.', y))
    parsing = ref_conv(w, 'decoder.conv4.', parsing_fea)
    # Edge_Module(x1, x2, x3)
    feas, edges = [], []
    for k, x in enumerate((x1, x2, x3), 1):
        fea = ref_bn_relu(w, f'edge.conv{k}.1.0.',
                          ref_conv(w, f'edge.conv{k}.0.', x))
        edge = ref_conv(w, 'edge.conv4.', fea, padding=1)
        feas.append(F.interpolate(fea, size=size, **UP))
        edges.append(F.interpolate(edge, size=size, **UP))
    edge = ref_conv(w, 'edge.conv5.', torch.cat(edges, 1))
    # fushion (Dropout2d is the identity in eval mode)
    y = torch.cat([parsing_fea] + feas, 1)
    y = ref_bn_relu(w, 'fushion.1.', ref_conv(w, 'fushion.0.', y))
    fusion = ref_conv(w, 'fushion.4.', y)
    return parsing, fusion, edge


# ----------------------------------------------- their criterion, by hand ----
def ref_edge_map(labels, ignore=255):
    """datasets/target_generation.py generate_edge_tensor: 1 where a label
    differs from its neighbour (down, right, down-right, down-left; neither
    ignored), then any 1 in the 3x3 neighbourhood."""
    lab = labels.float()
    edge = torch.zeros_like(lab)
    n, h, w = lab.shape

    def differ(a, b):
        return (a != b) & (a != ignore) & (b != ignore)

    edge[:, 1:h][differ(lab[:, 1:h], lab[:, :h - 1])] = 1
    e = edge[:, :, :w - 1]
    e[differ(lab[:, :, :w - 1], lab[:, :, 1:w])] = 1
    e = edge[:, :h - 1, :w - 1]
    e[differ(lab[:, :h - 1, :w - 1], lab[:, 1:h, 1:w])] = 1
    e = edge[:, :h - 1, 1:w]
    e[differ(lab[:, :h - 1, 1:w], lab[:, 1:h, :w - 1])] = 1
    edge = F.conv2d(edge[:, None], torch.ones(1, 1, 3, 3), padding=1)[:, 0]
    return (edge != 0).long()


def ref_lovasz_softmax(logits, labels, ignore=255):
    """utils/lovasz_softmax.py LovaszSoftmax (per_image=False,
    classes='present'): softmax, the valid pixels of the batch, per present
    class the errors |fg - p| sorted decreasingly dotted with the Lovasz
    gradient of the Jaccard index; the mean over the classes."""
    probs = logits.softmax(1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    labels = labels.reshape(-1)
    probs, labels = probs[labels != ignore], labels[labels != ignore]
    losses = []
    for c in range(probs.shape[1]):
        fg = (labels == c).float()
        if fg.sum() == 0:
            continue
        errors, perm = (fg - probs[:, c]).abs().sort(descending=True)
        fg = fg[perm]
        inter = fg.sum() - fg.cumsum(0)
        union = fg.sum() + (1 - fg).cumsum(0)
        jaccard = 1 - inter / union
        grad = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
        losses.append(errors @ grad)
    return sum(losses) / len(losses)


def ref_criterion_all(parsing, fusion, edge, labels, ignore=255):
    """utils/criterion.py CriterionAll (train.py: lambda_1 = lambda_2 = 1,
    lambda_3 = 0.1), no SCHP targets: each parsing output up to the label
    size (bilinear, align_corners=True), 0.5 x Lovasz + 0.5 x CE; the edge
    output's CE weighted [#edge, #non-edge] / #pixels for classes [0, 1];
    0.1 x ConsistencyLoss per parsing output (NaN when no pixel is an edge
    of both). Returns the three terms and the consistency term apart (their
    total is their sum)."""
    size = labels.shape[1:]
    edges = ref_edge_map(labels, ignore)
    pos, neg = (edges == 1).sum().float(), (edges == 0).sum().float()
    weights = torch.stack([pos / (pos + neg), neg / (pos + neg)])
    lovasz = ce = consistency = 0.
    edge_up = F.interpolate(edge, size=size, **UP)
    for pred in (parsing, fusion):
        pred = F.interpolate(pred, size=size, **UP)
        lovasz = lovasz + 0.5 * ref_lovasz_softmax(pred, labels, ignore)
        ce = ce + 0.5 * F.cross_entropy(pred, labels, ignore_index=ignore)
        # ConsistencyLoss: smooth L1 between the edges of the argmax parsing
        # and the argmax edge, on the pixels where both are 1
        parsed = pred.argmax(1).masked_fill(labels == ignore, ignore)
        both = (ref_edge_map(parsed, ignore) == 1) & (edge_up.argmax(1) == 1)
        valid = labels != ignore
        ones = both[valid]
        consistency = consistency + 0.1 * F.smooth_l1_loss(
            ref_edge_map(parsed, ignore)[valid][ones].float(),
            edge_up.argmax(1)[valid][ones].float())
    edge_loss = F.cross_entropy(edge_up, edges, weights, ignore_index=ignore)
    return dict(
        loss_lovasz=lovasz, loss_ce=ce, loss_edge=edge_loss), consistency


# ------------------------------------------- our weights, in their names ----
OURS_TO_THEIRS = [
    # backbone: mmpretrain VisionTransformer -> VisionTransformerHP
    (r'^(cls_token|pos_embed)$', r'\1'),
    (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
    (r'^layers\.(\d+)\.ln1\.', r'blocks.\1.norm1.'),
    (r'^layers\.(\d+)\.ln2\.', r'blocks.\1.norm2.'),
    (r'^layers\.(\d+)\.attn\.', r'blocks.\1.attn.'),
    (r'^layers\.(\d+)\.ffn\.layers\.0\.0\.', r'blocks.\1.mlp.fc1.'),
    (r'^layers\.(\d+)\.ffn\.layers\.1\.', r'blocks.\1.mlp.fc2.'),
    (r'^tap_norms\.', 'norm.'),
    # head: CE2PHead -> AugmentCE2P's modules (InPlaceABNSync = BN + ReLU)
    (r'^context\.stages\.(\d)\.1\.', r'context_encoding.stages.\1.1.'),
    (r'^context\.stages\.(\d)\.2\.', r'context_encoding.stages.\1.2.0.'),
    (r'^context\.bottleneck\.0\.', 'context_encoding.bottleneck.0.'),
    (r'^context\.bottleneck\.1\.', 'context_encoding.bottleneck.1.0.'),
    (r'^dec_context\.0\.', 'decoder.conv1.0.'),
    (r'^dec_context\.1\.', 'decoder.conv1.1.0.'),
    (r'^dec_low\.0\.', 'decoder.conv2.0.'),
    (r'^dec_low\.1\.', 'decoder.conv2.1.0.'),
    (r'^dec_fuse\.0\.', 'decoder.conv3.0.'),
    (r'^dec_fuse\.1\.', 'decoder.conv3.1.0.'),
    (r'^dec_fuse\.3\.', 'decoder.conv3.2.'),
    (r'^dec_fuse\.4\.', 'decoder.conv3.3.0.'),
    (r'^parsing_cls\.', 'decoder.conv4.'),
    (r'^edge_convs\.(\d)\.0\.', lambda m: f'edge.conv{int(m[1]) + 1}.0.'),
    (r'^edge_convs\.(\d)\.1\.', lambda m: f'edge.conv{int(m[1]) + 1}.1.0.'),
    (r'^edge_cls\.', 'edge.conv4.'),
    (r'^edge_fuse\.', 'edge.conv5.'),
    (r'^fusion\.', 'fushion.'),
]


def their_names(*modules):
    """The modules' tensors under the authors' parameter names; a key no
    rule renames is an error (every tensor must have its counterpart)."""
    theirs = {}
    for module in modules:
        for key, value in module.state_dict().items():
            if key.endswith('num_batches_tracked'):
                continue
            for pattern, repl in OURS_TO_THEIRS:
                new, n = re.subn(pattern, repl, key)
                if n:
                    break
            assert n, f'no counterpart for {key}'
            theirs[new] = value.detach().clone()
    return theirs


# ------------------------------------------------------------ our network ----
def student_checkpoint(path):
    """A random student pretrained at 256x128 (pos_embed 1 + 16x8), in the
    layout tools/model_converters/extract_student.py writes."""
    torch.manual_seed(0)
    vit = VisionTransformer(
        arch=dict(
            embed_dims=DIMS,
            num_layers=DEPTH,
            num_heads=HEADS,
            feedforward_channels=2 * DIMS),
        img_size=(256, 128),
        layer_cfgs=[dict()] * (DEPTH - 1) + [dict(num_heads=LAST_HEADS)])
    state = vit.state_dict()
    for key, value in state.items():  # no trivial norms, a bumpy pos_embed
        value.copy_(torch.randn_like(value) * (0.5 if 'ln' in key else 0.2))
    torch.save(
        dict(state_dict={
            f'backbone.{k}': v
            for k, v in state.items()
        }), path)
    return state


def official_backbone(checkpoint, tap_norm='replace'):
    """The official config's backbone, shrunk, with the student loaded as
    the official config's init_cfg loads it."""
    holder = nn.Module()
    holder.backbone = ResampledPosViT(
        arch=dict(
            embed_dims=DIMS,
            num_layers=DEPTH,
            num_heads=HEADS,
            feedforward_channels=2 * DIMS),
        img_size=(224, 224),
        patch_size=16,
        qkv_bias=True,
        with_cls_token=True,
        out_type='featmap',
        out_indices=TAPS,
        final_norm=False,
        layer_cfgs=[dict()] * (DEPTH - 1) + [dict(num_heads=LAST_HEADS)],
        pos_embed_resize='dino_scale_factor',
        tap_norm=tap_norm)
    StrictPretrained(
        checkpoint,
        pos_embed_grid=(16, 8),
        unused_keys=['ln1.weight', 'ln1.bias'],
        new_keys=['tap_norms.'] if tap_norm else (),
        pos_embed_resize='sequence_1d_bilinear')(
            holder)
    backbone = holder.backbone
    backbone.eval()  # mmpretrain ViT.train() returns None
    if tap_norm:
        torch.manual_seed(1)  # trained tap norms: not the identity
        for norm in backbone.tap_norms:
            norm.weight.data.uniform_(0.5, 1.5)
            norm.bias.data.normal_(0, 0.2)
    return backbone


def official_head():
    """CE2PHead, shrunk, with random BN statistics, in eval mode."""
    torch.manual_seed(2)
    head = CE2PHead(
        in_channels=DIMS,
        num_classes=CLASSES,
        norm_cfg=dict(type='BN'),
        channels=16,
        low_channels=8,
        edge_channels=8,
        loss_decode=dict(type='mmdpal.CE2PLoss', num_classes=CLASSES))
    for m in head.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
    # trained-like classifiers: the argmax varies over the image
    for conv in (head.parsing_cls, head.fusion[-1], head.edge_cls):
        conv.weight.data.normal_(0, 1)
    return head.eval()


def max_diff(a, b):
    return (a - b).abs().max().item()


def test_positions_equal_their_loader_and_forward(tmp_path):
    """The 128 pretrained positions resampled at loading as one flat
    sequence (bilinear) to the 14x14 grid of img_size 224, and in every
    forward DINO's scale-factor resize to the batch's grid (36x24 at
    576x384): theirs, to float precision; a 2-D load or a bicubic 1-D one
    gives other positions."""
    from mmdpal.models.utils.vit_tokens import (POS_EMBED_RESIZES,
                                                resample_sequence_1d)
    path = str(tmp_path / 'student.pth')
    student = student_checkpoint(path)
    backbone = official_backbone(path)
    loaded = backbone.pos_embed.detach()
    expected = ref_load_pos_embed(student['pos_embed'], 196)
    assert loaded.shape == (1, 197, DIMS)
    assert max_diff(loaded, expected) < 1e-6
    bicubic = resample_sequence_1d(student['pos_embed'], 1, 196)
    assert max_diff(bicubic, expected) > 1e-2
    for H, W in ((576, 384), (96, 64), (224, 224)):
        ours = POS_EMBED_RESIZES['dino_scale_factor'](backbone,
                                                      (H // 16, W // 16))
        theirs = ref_pos_for_input(loaded, (224, 224), 16, H, W)
        assert ours.shape == theirs.shape == (1, 1 + H * W // 256, DIMS)
        assert max_diff(ours, theirs) < 1e-6, (H, W)


def test_backbone_maps_head_logits_and_losses_equal_theirs(tmp_path):
    """Same weights, same input: the tapped maps after blocks 4, 8, 12
    (normed in the stream), the parsing, fused and edge logits and the
    losses equal the reference of VisionTransformerHP + AugmentCE2P +
    CriterionAll; with the norms on the taps only (the stream left as it
    is, what mmdpal computed before), blocks 5-12 see other tokens."""
    path = str(tmp_path / 'student.pth')
    student_checkpoint(path)
    backbone = official_backbone(path)
    head = official_head()
    theirs = their_names(backbone, head)
    assert 'norm.2.weight' in theirs and 'fushion.4.bias' in theirs
    torch.manual_seed(3)
    img = torch.randn(2, 3, 96, 64)
    with torch.no_grad():
        maps = backbone(img)
        expected = ref_vit_hp(theirs, img)
        logits = head(maps)
        expected_logits = ref_ce2p(theirs, expected)
    assert [m.shape for m in maps] == [(2, DIMS, 6, 4)] * 3
    diffs = [max_diff(a, b) for a, b in zip(maps, expected)]
    assert max(diffs) < 1e-4, diffs
    shapes = [tuple(o.shape[1:]) for o in logits]
    assert shapes == [(CLASSES, 24, 16)] * 2 + [(2, 24, 16)]
    diffs = [max_diff(a, b) for a, b in zip(logits, expected_logits)]
    assert max(diffs) < 1e-4, diffs

    # the stream normed or not: the first tap alike, the later ones not
    with torch.no_grad():
        tap_only = ref_vit_hp(theirs, img, stream_norm=False)
    assert max_diff(tap_only[0], expected[0]) < 1e-6
    assert min(max_diff(a, b) for a, b in zip(tap_only[1:], expected[1:])) \
        > 1e-2

    torch.manual_seed(4)
    labels = torch.randint(0, CLASSES, (2, 96, 64))
    labels[0, :10] = 255  # the warp's border
    losses = CE2PLoss(num_classes=CLASSES)(list(logits[:2]), logits[2], labels)
    ref, _ = ref_criterion_all(*expected_logits, labels)
    assert set(losses) == set(ref)
    diffs = {k: abs(losses[k].item() - ref[k].item()) for k in ref}
    assert max(diffs.values()) < 1e-5, diffs
    # their consistency term (left out of CE2PLoss) where it is defined: 0
    # (here an untrained edge branch predicts no edge: theirs is NaN)
    filled = labels.masked_fill(labels == 255, 0)
    parsing = 5. * F.one_hot(filled, CLASSES).permute(0, 3, 1, 2).float()
    edge = 5. * F.one_hot(ref_edge_map(labels), 2).permute(0, 3, 1, 2).float()
    assert ref_criterion_all(parsing, parsing, edge, labels)[1] == 0


def test_the_stream_norm_is_needed(tmp_path):
    """Without tap_norm='replace' (and the norms applied on the taps only)
    the maps after blocks 8 and 12 are not theirs: the test above can
    fail."""
    path = str(tmp_path / 'student.pth')
    student_checkpoint(path)
    normed = official_backbone(path)
    plain = official_backbone(path, tap_norm=None)
    theirs = their_names(normed)
    img = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        maps = [
            norm(m.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(m.shape)
            for norm, m in zip(normed.tap_norms, plain(img))
        ]
        expected = ref_vit_hp(theirs, img)
    assert max_diff(maps[0], expected[0]) < 1e-4
    assert max_diff(maps[2], expected[2]) > 1e-2


def test_tap_norm_refuses_a_final_norm():
    with pytest.raises(ValueError, match='set final_norm=False'):
        ResampledPosViT(
            arch='deit-tiny',
            out_indices=(3, 7, 11),
            tap_norm='replace',
            final_norm=True)
    with pytest.raises(ValueError, match=r"tap_norm='norm': use one of"):
        ResampledPosViT(arch='deit-tiny', tap_norm='norm')


def test_new_keys_must_name_model_tensors(tmp_path):
    path = str(tmp_path / 'student.pth')
    student_checkpoint(path)
    holder = nn.Module()
    holder.backbone = ResampledPosViT(
        arch=dict(
            embed_dims=DIMS,
            num_layers=DEPTH,
            num_heads=HEADS,
            feedforward_channels=2 * DIMS),
        img_size=(256, 128),
        final_norm=True,
        layer_cfgs=[dict()] * (DEPTH - 1) + [dict(num_heads=LAST_HEADS)])
    with pytest.raises(KeyError, match="new_keys entry 'tap_norms.' names no"):
        StrictPretrained(path, new_keys=['tap_norms.'])(holder)
    with pytest.raises(
            ValueError,
            match=r"StrictPretrained pos_embed_resize='1d': use one of "
            r"\['grid', 'sequence_1d_bilinear'\]"):
        StrictPretrained(path, pos_embed_resize='1d')


# ----------------------------------------------------- test-time geometry ----
def their_val_input(img, crop_size):
    """datasets.py LIPDataValSet: the box (0, 0, w - 1, h - 1) fitted to the
    crop's aspect (_xywh2cs), get_affine_transform(centre, scale, 0) and
    cv2.warpAffine (bilinear, border 0). Returns the crop, centre, scale."""
    h, w = img.shape[:2]
    aspect = crop_size[1] / crop_size[0]
    bw, bh = w - 1, h - 1
    centre = np.array([bw * 0.5, bh * 0.5], np.float32)
    if bw > aspect * bh:
        bh = bw / aspect
    elif bw < aspect * bh:
        bw = bh * aspect
    trans = their_affine(centre, bw, 0., crop_size)
    crop = cv2.warpAffine(
        img,
        trans, (crop_size[1], crop_size[0]),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0))
    return crop, centre, bw


def their_parsing_back(pred, centre, scale_w, ori_shape, crop_size):
    """utils/transforms.py transform_parsing: the crop's argmax warped back
    with get_affine_transform(..., inv=1) (the three points matched crop ->
    image), nearest, border 0."""
    out_h, out_w = crop_size
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = centre
    src[1] = np.array(centre) + [0, scale_w * -0.5]
    dst[0] = [(out_w - 1) * 0.5, (out_h - 1) * 0.5]
    dst[1] = dst[0] + [0, (out_w - 1) * -0.5]
    for points in (src, dst):
        d = points[0] - points[1]
        points[2] = points[1] + [-d[1], d[0]]
    inv = cv2.getAffineTransform(dst, src)
    return cv2.warpAffine(
        pred.astype(np.uint8),
        inv, (ori_shape[1], ori_shape[0]),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0)


@pytest.mark.parametrize(
    'ori_shape', [(120, 60), (50, 91)], ids=['portrait', 'landscape'])
def test_test_fit_and_map_back_equal_theirs(ori_shape):
    """Portrait or landscape, the image is fitted into the crop's h x w
    (never rotated to fit its long side), and the logits mapped back give
    their warped-back prediction."""
    crop_size = (96, 64)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (*ori_shape, 3), dtype=np.uint8)
    out = SCHPAffineFit(crop_size=crop_size)(dict(img=img.copy()))
    crop, centre, scale_w = their_val_input(img, crop_size)
    assert out['img_shape'] == crop_size == out['fit_shape']
    assert np.abs(out['img'].astype(int) - crop).max() <= 1
    # the content fills the crop's height (portrait) or width (landscape)
    rows = np.nonzero(crop.any(axis=(1, 2)))[0]
    cols = np.nonzero(crop.any(axis=(0, 2)))[0]
    if ori_shape[0] / ori_shape[1] > crop_size[0] / crop_size[1]:
        assert len(rows) == crop_size[0] and len(cols) < crop_size[1]
    else:
        assert len(cols) == crop_size[1] and len(rows) < crop_size[0]

    logits = torch.randn(1, CLASSES, crop_size[0] // 4, crop_size[1] // 4)
    back = fit_back(logits, out['fit_matrix'], crop_size, ori_shape)
    assert back.shape == (1, CLASSES, *ori_shape)
    pred = F.interpolate(logits, size=crop_size, **UP).argmax(1)[0].numpy()
    expected = their_parsing_back(pred, centre, scale_w, ori_shape, crop_size)
    mismatch = (back.argmax(1)[0].numpy() != expected).mean()
    assert mismatch == 0, mismatch


def test_test_scales_equal_theirs():
    """evaluate.py multi_scale_testing: the normalised crop (ToTensor,
    BGR2RGB, Normalize) resized by nn.Upsample(scale_factor=s, bilinear,
    align_corners=True). Ours: AlignCornersRescale on the 8-bit crop, then
    mmseg's normalisation (mean / std x 255, BGR to RGB)."""
    from mmdpal.datasets.transforms import AlignCornersRescale
    rng = np.random.default_rng(1)
    crop = rng.integers(0, 255, (96, 64, 3), dtype=np.uint8)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    theirs_in = (
        (torch.from_numpy(crop).permute(2, 0, 1).float() / 255)[[2, 1, 0]] -
        mean) / std
    for s in (0.5, 0.75, 1.0, 1.25, 1.5):
        out = AlignCornersRescale(scale_factor=s)(dict(img=crop.copy()))
        ours = torch.from_numpy(out['img']).permute(2, 0, 1)[[2, 1, 0]]
        ours = (ours - 255 * mean) / (255 * std)
        theirs = F.interpolate(
            theirs_in[None],
            scale_factor=s,
            mode='bilinear',
            align_corners=True)[0]
        assert out['img_shape'] == tuple(theirs.shape[1:]), s
        assert max_diff(ours, theirs) < 1e-4, s


def test_flip_test_maps_back_as_theirs():
    """evaluate.py with --flip: the flipped crop's logits flipped back and
    averaged with the others in the crop, then warped back once. Ours:
    CE2PHead.predict of each, mmseg's segmentor flipping the flipped one
    back on the image, the average: the same argmax on every pixel, also
    where the nearest crop pixel is a tie (this landscape size has some)."""
    crop_size, ori_shape = (96, 64), (50, 91)
    img = np.zeros((*ori_shape, 3), np.uint8)
    fit = SCHPAffineFit(crop_size=crop_size)(dict(img=img.copy()))
    _, centre, scale_w = their_val_input(img, crop_size)
    head = official_head()
    torch.manual_seed(5)
    # maps at a quarter of the crop: logits at the crop's own size, so
    # that neighbouring crop pixels often differ in their argmax
    maps = [torch.randn(1, DIMS, 24, 16) for _ in range(3)]
    flipped = [m.flip(-1) for m in maps]
    meta = dict(
        ori_shape=ori_shape,
        img_shape=crop_size,
        fit_matrix=fit['fit_matrix'],
        fit_shape=crop_size)
    with torch.no_grad():
        plain = head.predict(maps, [dict(meta, flip=False)])
        mirror = head.predict(
            flipped, [dict(meta, flip=True, flip_direction='horizontal')])
        merged = (plain + mirror.flip(-1)) / 2  # postprocess_result's flip
        crop = (head(maps)[1] + head(flipped)[1].flip(-1)) / 2
    pred = F.interpolate(crop, size=crop_size, **UP).argmax(1)[0].numpy()
    expected = their_parsing_back(pred, centre, scale_w, ori_shape, crop_size)
    assert merged.shape == (1, CLASSES, *ori_shape)
    assert (merged.argmax(1)[0].numpy() == expected).all()


def test_official_config_builds_their_network():
    """The official config, as mmseg builds it: the stream-normed ViT at
    224x224 with DINO's per-forward resize, the 1-D bilinear load, a head
    that norms nothing, the fitted test input mapped back."""
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    import mmdpal  # noqa: F401
    cfg = Config.fromfile(OFFICIAL)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    backbone, head = model.backbone, model.decode_head
    assert isinstance(backbone, ResampledPosViT)
    assert backbone.tap_norm == 'replace' and len(backbone.tap_norms) == 3
    assert backbone.pos_embed_resize == 'dino_scale_factor'
    assert backbone.patch_resolution == (14, 14)
    assert backbone.pos_embed.shape == (1, 197, 192)
    assert not backbone.final_norm and list(backbone.out_indices) == [3, 7, 11]
    assert isinstance(head, CE2PHead)
    assert not any(isinstance(m, nn.LayerNorm) for m in head.modules())
    init = cfg.model.init_cfg
    assert init.pos_embed_resize == 'sequence_1d_bilinear'
    assert init.pos_embed_grid == (16, 8)
    assert list(init.new_keys) == ['tap_norms.']
    for pipeline in (cfg.test_dataloader.dataset.pipeline,
                     cfg.val_dataloader.dataset.pipeline):
        assert pipeline[1] == dict(
            type='mmdpal.SCHPAffineFit', crop_size=(576, 384))
        assert {'fit_matrix', 'fit_shape'} <= set(pipeline[-1].meta_keys)
    tta = cfg.tta_pipeline[1].transforms
    assert tta[0] == [dict(type='mmdpal.SCHPAffineFit', crop_size=(576, 384))]
    assert tta[1] == [
        dict(type='mmdpal.AlignCornersRescale', scale_factor=r)
        for r in (0.5, 0.75, 1.0, 1.25, 1.5)
    ]
