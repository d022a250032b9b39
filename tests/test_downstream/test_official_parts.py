"""The modules of the authors' downstream protocol (configs/downstream/
*_official.py) against step-by-step references written from their code
(stoa-xh91/Human-centric-Vision-Perception: I2I-ReID, attribute_recognition,
HumanParsing): explicit loops over images, pixels and classes."""
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdpal.engine import SelfCorrectionHook, TimmCosineLR
from mmdpal.evaluation import PositiveRatioBCEMetric
from mmdpal.models import (BNNeckReIDHead, CE2PHead, CE2PLoss, ParsingTTAModel,
                           PositiveRatioBCELoss, SoftMarginTripletLoss,
                           parsing_edges)


# ------------------------------------------------------------------ ReID ----
def ref_soft_margin_triplet(feats, labels):
    """I2I-ReID/loss/triplet_loss.py, NO_MARGIN: hardest positive and
    negative Euclidean distances, SoftMarginLoss(d_an - d_ap, 1)."""
    n = len(labels)
    total = 0.
    for i in range(n):
        dists = []
        for j in range(n):
            sq = sum(float(feats[i, k]) ** 2 for k in range(feats.shape[1])) \
                + sum(float(feats[j, k]) ** 2 for k in range(feats.shape[1])) \
                - 2 * sum(float(feats[i, k] * feats[j, k])
                          for k in range(feats.shape[1]))
            dists.append(math.sqrt(max(sq, 1e-12)))
        ap = max(d for d, y in zip(dists, labels) if y == labels[i])
        an = min(d for d, y in zip(dists, labels) if y != labels[i])
        total += math.log(1 + math.exp(-(an - ap)))
    return total / n


def test_soft_margin_triplet_equals_theirs():
    torch.manual_seed(0)
    feats = torch.randn(6, 4, dtype=torch.float64)
    labels = [0, 0, 1, 1, 2, 2]
    loss = SoftMarginTripletLoss()(feats, torch.tensor(labels))
    assert loss.item() == pytest.approx(
        ref_soft_margin_triplet(feats, labels), rel=1e-9)
    assert SoftMarginTripletLoss(loss_weight=2.)(
        feats, torch.tensor(labels)).item() == pytest.approx(2 * loss.item())


def reid_samples(labels):
    from mmdet.structures import ReIDDataSample
    samples = []
    for pid in labels:
        sample = ReIDDataSample()
        sample.set_gt_label(pid)
        samples.append(sample)
    return samples


def test_bnneck_head_equals_theirs():
    """build_transformer of I2I-ReID/model/make_model.py: no Linear before
    the BNNeck, its bias frozen at 0, a bias-free classifier; the triplet
    on the raw embedding, cross-entropy (no smoothing) on the scores of its
    batch-normalised copy; the raw embedding at test time."""
    torch.manual_seed(0)
    head = BNNeckReIDHead(
        in_channels=3,
        num_classes=4,
        loss_cls=dict(type='mmpretrain.CrossEntropyLoss'),
        loss_triplet=dict(type='mmdpal.SoftMarginTripletLoss'))
    head.init_weights()
    assert [n for n, _ in head.named_parameters()
            ] == ['bn.weight', 'bn.bias', 'classifier.weight']
    assert not head.bn.bias.requires_grad
    assert head.classifier.weight.std().item() < 0.005  # N(0, 0.001^2)
    with torch.no_grad():
        head.bn.weight.copy_(torch.tensor([1.5, 0.5, 2.]))
        head.classifier.weight.normal_()
    feats = torch.randn(4, 3)
    labels = [0, 0, 3, 3]
    losses = head.loss((feats, ), reid_samples(labels))

    weight = head.bn.weight.tolist()
    classifier = head.classifier.weight.detach()
    ce = 0.
    for i in range(4):
        bn = []
        for c in range(3):
            column = [float(feats[k, c]) for k in range(4)]
            mean = sum(column) / 4
            var = sum((v - mean)**2 for v in column) / 4  # biased, train
            bn.append((column[i] - mean) / math.sqrt(var + 1e-5) * weight[c])
        scores = [
            sum(bn[c] * float(classifier[k, c]) for c in range(3))
            for k in range(4)
        ]
        log_z = math.log(sum(math.exp(s) for s in scores))
        ce += (log_z - scores[labels[i]]) / 4
    assert losses['ce_loss'].item() == pytest.approx(ce, rel=1e-5)
    assert losses['triplet_loss'].item() == pytest.approx(
        ref_soft_margin_triplet(feats.double(), labels), rel=1e-5)

    head.eval()
    predicted = head.predict((feats, ), reid_samples(labels))
    assert torch.equal(predicted[1].pred_feature, feats[1])


def test_timm_cosine_lr_equals_theirs():
    """timm's CosineLRScheduler as I2I-ReID builds it (warm-up from 0.01 x
    lr over 20 epochs, cosine over all 120 epochs to 0.002 x lr), stepped
    with scheduler.step(epoch) at the end of each 1-based epoch: epoch e
    trains at _get_lr(e - 1); the bias group (2 x lr) warms up from the
    same absolute value."""
    base, epoch_iters = 2e-4, 3
    params = [nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.AdamW([
        dict(params=[params[0]], lr=base),
        dict(params=[params[1]], lr=2 * base)
    ])
    scheduler = TimmCosineLR(
        optimizer,
        epoch_iters=epoch_iters,
        warmup_epochs=20,
        max_epochs=120,
        warmup_lr=0.01 * base,
        eta_min=0.002 * base)

    def timm_get_lr(t, lr_max):
        init, lr_min = 0.01 * base, 0.002 * base
        if t < 20:
            return init + t * (lr_max - init) / 20
        return lr_min + 0.5 * (lr_max - lr_min) * (1 +
                                                   math.cos(math.pi * t / 120))

    for epoch in range(1, 121):
        for _ in range(epoch_iters):
            for group, lr_max in zip(optimizer.param_groups, (base, 2 * base)):
                assert group['lr'] == pytest.approx(
                    timm_get_lr(epoch - 1, lr_max), rel=1e-12)
            optimizer.step()
            scheduler.step()


# ------------------------------------------------------------ attributes ----
def ref_weighted_bce(logits, targets, ratio):
    """attribute_recognition/losses/bceloss.py with ratio2weight: BCE of
    each term times exp(1 - r) (positive) or exp(r) (negative), summed over
    the attributes, averaged over the images."""
    total = 0.
    for i in range(len(logits)):
        for j in range(len(ratio)):
            x, y = float(logits[i][j]), float(targets[i][j])
            p = 1 / (1 + math.exp(-x))
            bce = -(y * math.log(p) + (1 - y) * math.log(1 - p))
            weight = math.exp(1 - ratio[j]) if y == 1 else math.exp(ratio[j])
            total += weight * bce
    return total / len(logits)


def test_positive_ratio_bce_equals_theirs():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, dtype=torch.float64)
    targets = torch.tensor([[1, 0, 0, 1], [0, 0, 1, 1], [1, 1, 0, 1]])
    ratio = [0.5, 0.1, 0.25, 0.9]
    loss = PositiveRatioBCELoss(num_classes=4).double()
    with pytest.raises(RuntimeError, match='PositiveRatioHook'):
        loss(logits, targets)
    loss.pos_ratio.copy_(torch.tensor(ratio, dtype=torch.float64))
    assert loss(
        logits, targets, avg_factor=3).item() == pytest.approx(
            ref_weighted_bce(logits, targets, ratio), rel=1e-12)
    assert 'pos_ratio' in loss.state_dict()  # tested checkpoints bring it

    # the validation loss (their ReduceLROnPlateau monitor), from the
    # stored probabilities
    metric = PositiveRatioBCEMetric()
    metric.pos_ratio = torch.tensor(ratio, dtype=torch.float64)
    metric.process([], [
        dict(
            pred_score=logits[i].sigmoid(),
            gt_label=targets[i].nonzero()[:, 0]) for i in range(3)
    ])
    assert metric.compute_metrics(metric.results)['loss'] == pytest.approx(
        ref_weighted_bce(logits, targets, ratio), rel=1e-9)

    # a checkpoint without its ratios (NaN buffer) would give a NaN
    # par/loss that the plateau scheduler reads: refused in one line
    metric = PositiveRatioBCEMetric()
    metric.pos_ratio = torch.full((4, ), float('nan'))
    with pytest.raises(
            RuntimeError,
            match=r"^PositiveRatioBCEMetric: the model's PositiveRatioBCELoss "
            r'has no positive ratios .*PositiveRatioHook[^\n]*$'):
        metric.process([], [
            dict(
                pred_score=logits[0].sigmoid(),
                gt_label=targets[0].nonzero()[:, 0])
        ])


# ------------------------------------------------------------- LIP (SCHP) ----
def ref_edges(label, ignore=255):
    """datasets/target_generation.py generate_edge_tensor, pixel by pixel:
    the four neighbour comparisons, then a 3x3 dilation."""
    H, W = len(label), len(label[0])

    def differ(a, b):
        return a != b and a != ignore and b != ignore

    edge = [[0] * W for _ in range(H)]
    for i in range(H):
        for j in range(W):
            if i > 0 and differ(label[i][j], label[i - 1][j]):
                edge[i][j] = 1
            if j < W - 1 and differ(label[i][j], label[i][j + 1]):
                edge[i][j] = 1
            if i < H - 1 and j < W - 1 and differ(label[i][j],
                                                  label[i + 1][j + 1]):
                edge[i][j] = 1
            if i < H - 1 and j > 0 and differ(label[i][j],
                                              label[i + 1][j - 1]):
                edge[i][j] = 1
    return [[
        int(
            any(edge[a][b] for a in range(max(i - 1, 0), min(i + 2, H))
                for b in range(max(j - 1, 0), min(j + 2, W))))
        for j in range(W)
    ] for i in range(H)]


def parsing_labels(seed=0, size=(8, 6), num_classes=5):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (2, *size), generator=g)
    labels[0, :2, :] = 255  # an ignored band (the warp's border)
    labels[1, 5, 3] = 255
    return labels


def test_parsing_edges_equal_theirs():
    labels = parsing_labels()
    edges = parsing_edges(labels)
    for b in range(2):
        assert edges[b].tolist() == ref_edges(labels[b].tolist())


def ref_lovasz(probs, labels):
    """utils/lovasz_softmax.py lovasz_softmax_flat, classes='present', on
    the lists of valid pixels: per present class, the errors sorted in
    decreasing order dotted with the Lovasz gradient of the Jaccard loss."""
    losses = []
    for c in range(len(probs[0])):
        fg = [1. if y == c else 0. for y in labels]
        if sum(fg) == 0:
            continue
        errors = [abs(f - p[c]) for f, p in zip(fg, probs)]
        order = sorted(range(len(fg)), key=lambda i: -errors[i])
        gts, inter, union, jaccard = sum(fg), 0., 0., []
        for k in order:
            inter += fg[k]
            union += 1 - fg[k]
            jaccard.append(1 - (gts - inter) / (gts + union))
        grads = [jaccard[0]] + [
            jaccard[k] - jaccard[k - 1] for k in range(1, len(jaccard))
        ]
        losses.append(sum(errors[k] * g for k, g in zip(order, grads)))
    return sum(losses) / len(losses)


def pixels(t):
    """(B, C, H, W) -> list of per-pixel lists, B-major then row-major."""
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1]).tolist()


def ref_kl(logits, target_logits, labels):
    """utils/kl_loss.py: KL of the softmaxes over the valid pixels,
    'batchmean'."""
    total, count = 0., 0
    for x, t, y in zip(pixels(logits), pixels(target_logits), labels):
        if y == 255:
            continue
        lz = math.log(sum(math.exp(v) for v in x))
        tz = sum(math.exp(v) for v in t)
        q = [math.exp(v) / tz for v in t]
        total += sum(qc * (math.log(qc) - (xc - lz)) for qc, xc in zip(q, x))
        count += 1
    return total / count


def ref_criterion(parsings, edge, labels, soft=None):
    """utils/criterion.py CriterionAll.parsing_loss (lambda 1, 1; the
    consistency term is 0), with its in-place label mutation."""
    size = labels.shape[1:]

    def up(x):
        return F.interpolate(x, size=size, mode='bilinear', align_corners=True)

    labels = labels.clone()
    edges = [
        v for b in range(len(labels)) for row in ref_edges(labels[b].tolist())
        for v in row
    ]
    pos, neg = edges.count(1), edges.count(0)
    weights = [pos / (pos + neg), neg / (pos + neg)]
    lovasz = ce = 0.
    for pred in parsings:
        pred = up(pred)
        flat = labels.reshape(-1).tolist()
        probs = pixels(pred.softmax(1))
        valid = [i for i, y in enumerate(flat) if y != 255]
        lovasz += 0.5 * ref_lovasz([probs[i]
                                    for i in valid], [flat[i] for i in valid])
        if soft is None:
            terms = []
            for i in valid:
                x = pixels(pred)[i]
                terms.append(
                    math.log(sum(math.exp(v) for v in x)) - x[flat[i]])
            ce += 0.5 * sum(terms) / len(terms)
        else:
            labels[labels == 255] = 0  # to_one_hot(target[0]) in place
            alpha = 1 / (soft[2] + 1)
            onehot = F.one_hot(labels, pred.shape[1]).permute(0, 3, 1, 2)
            target = (1 - alpha) * up(soft[0]) + alpha * onehot
            ce += 0.5 * ref_kl(pred, target, labels.reshape(-1).tolist())
    edge = up(edge)
    if soft is None:
        num = den = 0.
        for x, y in zip(pixels(edge), edges):
            num += weights[y] * (math.log(sum(math.exp(v) for v in x)) - x[y])
            den += weights[y]
        edge_loss = num / den
    else:
        onehot = F.one_hot(torch.tensor(edges).reshape(labels.shape),
                           2).permute(0, 3, 1, 2)
        target = (1 - alpha) * up(soft[1]) + alpha * onehot
        edge_loss = ref_kl(edge, target, labels.reshape(-1).tolist())
    return dict(loss_lovasz=lovasz, loss_ce=ce, loss_edge=edge_loss)


def tiny_ce2p_head():
    """A CE2P head on 8-channel maps, 5 classes, in eval mode."""
    head = CE2PHead(
        in_channels=8,
        num_classes=5,
        norm_cfg=dict(type='BN'),
        channels=16,
        low_channels=4,
        edge_channels=4,
        loss_decode=dict(type='mmdpal.CE2PLoss', num_classes=5))
    return head.eval()


@pytest.mark.parametrize('cycle', [None, 1, 2])
def test_ce2p_loss_equals_theirs(cycle):
    """CE + Lovasz on both parsing outputs and the balanced edge CE; in
    self-correction cycles the KL towards SCHP logits mixed with the
    one-hot label (the ignored pixels turned background)."""
    torch.manual_seed(cycle or 0)
    labels = parsing_labels(seed=cycle or 0)
    parsings = [torch.randn(2, 5, 4, 3) for _ in range(2)]
    edge = torch.randn(2, 2, 4, 3)
    soft = None if cycle is None else (torch.randn(2, 5, 4, 3),
                                       torch.randn(2, 2, 4, 3), cycle)
    losses = CE2PLoss(num_classes=5)(parsings, edge, labels, soft)
    expected = ref_criterion(parsings, edge, labels, soft)
    assert set(losses) == set(expected)
    for key, value in expected.items():
        assert losses[key].item() == pytest.approx(value, rel=1e-4), key


def test_ce2p_head_shapes_and_prediction():
    """Blocks 4, 8, 12 (stride 16) in; parsing, fused and edge logits at
    stride 4 out; the prediction is the fused logits at the input size."""
    head = tiny_ce2p_head()
    maps = [torch.randn(2, 8, 3, 2) for _ in range(3)]
    parsing, fused, edge = head(maps)
    assert parsing.shape == fused.shape == (2, 5, 12, 8)
    assert edge.shape == (2, 2, 12, 8)
    pred = head.predict(maps, [dict(img_shape=(48, 32))] * 2)
    assert torch.allclose(
        pred,
        F.interpolate(
            fused, size=(48, 32), mode='bilinear', align_corners=True))


def test_ce2p_head_loss_takes_the_schp_targets_of_its_samples():
    """CE2PHead.loss: its three outputs into CE2PLoss with the labels of the
    data samples, and, in SCHP cycles, the SCHP logits and cycle count that
    SelfCorrectionHook put in them."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    torch.manual_seed(0)
    head = tiny_ce2p_head()  # eval: no dropout, the same outputs twice
    maps = [torch.randn(2, 8, 2, 2) for _ in range(3)]
    labels = parsing_labels(size=(8, 8))
    samples = []
    for b in range(2):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=labels[b][None])
        samples.append(sample)
    parsing, fused, edge = head(maps)
    plain = head.loss(maps, samples)
    expected = head.loss_decode([parsing, fused], edge, labels)
    for key in expected:
        assert torch.allclose(plain[key], expected[key]), key

    soft = (torch.randn(2, 5, 8, 8), torch.randn(2, 2, 8, 8), 3)
    for b, sample in enumerate(samples):
        sample.schp_parsing = soft[0][b]
        sample.schp_edge = soft[1][b]
        sample.schp_cycle = 3
    cycled = head.loss(maps, samples)
    expected = head.loss_decode([parsing, fused], edge, labels, soft)
    for key in expected:
        assert torch.allclose(cycled[key], expected[key]), key
    assert not torch.allclose(cycled['loss_ce'], plain['loss_ce'])


def test_parsing_tta_averages_raw_logits_with_left_right_swapped():
    """evaluate.py multi_scale_testing: the flipped image's logits with
    channels (14, 15), ... swapped, averaged with the others' raw logits."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    segmentor = nn.Module()
    segmentor.test_step = lambda data: []  # what BaseTTAModel requires
    tta = ParsingTTAModel(flip_pairs=[(1, 2)], module=segmentor)
    logits = [torch.randn(3, 2, 2) for _ in range(3)]
    samples = []
    for logit, flip in zip(logits, (False, True, False)):
        sample = SegDataSample(metainfo=dict(flip=flip))
        sample.seg_logits = PixelData(data=logit)
        samples.append(sample)
    merged = tta.merge_preds([samples])[0]
    expected = (logits[0] + logits[1][[0, 2, 1]] + logits[2]) / 3
    assert torch.allclose(merged.seg_logits.data, expected)
    assert torch.equal(merged.pred_sem_seg.data, expected.argmax(0)[None])


class _Head(nn.Module):
    """A stand-in parsing head with one BatchNorm: (parsing, fused, edge)."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(2)

    def forward(self, x):
        y = self.bn(x)
        return y, y + 1, y - 1


class _Segmentor(nn.Module):
    """What SelfCorrectionHook uses of an mmseg EncoderDecoder."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(2, 2)
        self.decode_head = _Head()

    def data_preprocessor(self, data, training):
        return dict(
            inputs=torch.stack(data['inputs']),
            data_samples=data['data_samples'])

    def extract_feat(self, inputs):
        return self.backbone(inputs)


def test_self_correction_cycles_equal_theirs():
    """utils/schp.py: moving_average(schp, model, 1 / (n + 1)) of the
    parameters, then bn_re_estimate: statistics reset and averaged over one
    pass of the loader (batch b after n images weighs b / (n + b)); the
    last epoch's cycle leaves the SCHP weights in the model."""
    from mmengine.logging import MMLogger
    torch.manual_seed(0)
    model = _Segmentor()
    loader = [
        dict(inputs=list(torch.randn(b, 2)), data_samples=[None] * b)
        for b in (2, 3)
    ]
    runner = SimpleNamespace(
        model=model,
        epoch=0,
        max_epochs=3,
        train_dataloader=loader,
        logger=MMLogger.get_instance('test_schp'))
    hook = SelfCorrectionHook(start_epoch=2, cycle_epochs=1)
    hook.before_train(runner)
    hook.after_train_epoch(runner)  # epoch 1: before the first cycle
    assert hook.cycle == 0

    def re_estimated(weights):
        """The BN statistics SCHP re-estimates with these weights."""
        with torch.no_grad():
            feats = [
                F.linear(torch.stack(d['inputs']), *weights) for d in loader
            ]
        mean = (2 * feats[0].mean(0) + 3 * feats[1].mean(0)) / 5
        var = (2 * feats[0].var(0) + 3 * feats[1].var(0)) / 5  # unbiased
        return mean, var

    first = [p.detach().clone() for p in model.backbone.parameters()]
    runner.epoch = 1  # the end of epoch 2: cycle 1 copies the model
    hook.after_train_epoch(runner)
    assert hook.cycle == 1
    for p, q in zip(hook.schp.backbone.parameters(), first):
        assert torch.equal(p, q)
    mean, var = re_estimated(first)
    assert torch.allclose(hook.schp.decode_head.bn.running_mean, mean)
    assert torch.allclose(hook.schp.decode_head.bn.running_var, var)
    assert hook.schp.decode_head.bn.momentum == 0.1  # restored

    # label refinement: the SCHP logits of the batch in its samples
    from mmengine.structures import BaseDataElement
    batch = dict(
        inputs=list(torch.randn(2, 2)),
        data_samples=[BaseDataElement(), BaseDataElement()])
    hook.before_train_iter(runner, 0, batch)
    assert batch['data_samples'][0].schp_cycle == 1
    assert batch['data_samples'][1].schp_parsing.shape == (2, )

    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.)
    second = [p.detach().clone() for p in model.backbone.parameters()]
    runner.epoch = 2  # the end of the last epoch: cycle 2, model <- SCHP
    hook.after_train_epoch(runner)
    averaged = [(a + b) / 2 for a, b in zip(first, second)]
    for p, q in zip(hook.schp.backbone.parameters(), averaged):
        assert torch.allclose(p, q)
    for p, q in zip(model.backbone.parameters(), averaged):
        assert torch.allclose(p, q)
    mean, _ = re_estimated(averaged)
    assert torch.allclose(model.decode_head.bn.running_mean, mean)


def test_lip_official_schedule_equals_theirs():
    """The official LIP config's schedulers, epoch by epoch, against
    utils/warmup_scheduler.py SGDRScheduler (--learning-rate 7e-4
    --lr_divider 500 --cyclelr_divider 2 --warmup_epochs 30 --epochs 150
    --schp-start 120, cycles of 10)."""
    from mmdpal_testing import REPO
    from mmengine.config import Config
    from mmengine.registry import PARAM_SCHEDULERS
    cfg = Config.fromfile(
        f'{REPO}/configs/downstream/mmseg/'
        'dpal-vit-ti_ce2p_8xb12-150e_lip-576x384_official.py')
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=cfg.lr)
    schedulers = [
        PARAM_SCHEDULERS.build(dict(s, optimizer=optimizer))
        for s in cfg.param_scheduler
    ]

    def sgdr(t, base=7e-4):
        eta_min = base / 500
        if t < 30:
            return eta_min + t * (base - eta_min) / 30
        if t < 120:
            return eta_min + (base - eta_min) * (1 +
                                                 math.cos(math.pi *
                                                          (t - 30) / 90)) / 2
        return eta_min + (base / 2 - eta_min) * (1 + math.cos(math.pi * (
            (t - 120) % 10) / 10)) / 2

    for epoch in range(150):
        assert optimizer.param_groups[0]['lr'] == pytest.approx(
            sgdr(epoch), rel=1e-9), epoch
        optimizer.step()
        for scheduler in schedulers:
            scheduler.step()


def their_affine(center, scale_w, rot, out_size):
    """utils/transforms.py get_affine_transform: three points (the centre,
    a point up the rotated half width, a third at a right angle) matched
    with cv2."""
    import cv2
    import numpy as np
    out_h, out_w = out_size
    sn, cs = math.sin(math.radians(rot)), math.cos(math.radians(rot))
    src_dir = [0 * cs - (scale_w * -0.5) * sn, 0 * sn + (scale_w * -0.5) * cs]
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = center
    src[1] = np.array(center) + src_dir
    dst[0] = [(out_w - 1) * 0.5, (out_h - 1) * 0.5]
    dst[1] = dst[0] + [0, (out_w - 1) * -0.5]
    for points in (src, dst):
        d = points[0] - points[1]
        points[2] = points[1] + [-d[1], d[0]]
    return cv2.getAffineTransform(src, dst)


def test_schp_affine_crop_equals_theirs():
    """datasets/datasets.py LIPDataSet: the whole image (its box fitted to
    the crop's aspect) warped with the drawn scale and rotation; the label
    nearest-sampled, 255 outside the image."""
    import cv2
    import numpy as np

    from mmdpal.datasets.transforms import SCHPAffineCrop, person_affine_matrix
    for rot in (0., 37.5, -80.):
        assert np.allclose(
            person_affine_matrix((40., 61.5), 123., rot, (96, 64)),
            their_affine((40., 61.5), 123., rot, (96, 64)),
            atol=1e-4)

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (120, 81, 3), dtype=np.uint8)
    label = rng.integers(0, 20, (120, 81), dtype=np.uint8)
    crop = SCHPAffineCrop(crop_size=(96, 64))
    for seed in range(4):
        np.random.seed(seed)
        out = crop(
            dict(
                img=img.copy(),
                gt_seg_map=label.copy(),
                seg_fields=['gt_seg_map']))
        np.random.seed(seed)  # their draws, in their order
        scale = np.clip(np.random.randn() * 0.25 + 1, 0.75, 1.25)
        rot = np.clip(np.random.randn() * 30, -60, 60) \
            if np.random.rand() <= 0.6 else 0
        box_w = 80.  # 80 x 119 is wider than 64:96: its height grows
        trans = their_affine((40., 59.5), box_w * scale, rot, (96, 64))
        expected_img = cv2.warpAffine(
            img,
            trans, (64, 96),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0))
        expected_label = cv2.warpAffine(
            label,
            trans, (64, 96),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=255)
        assert out['img_shape'] == (96, 64)
        assert np.abs(out['img'].astype(int) - expected_img).max() <= 1
        assert (out['gt_seg_map'] != expected_label).mean() < 0.01
