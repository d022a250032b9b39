"""The DPAL student in a person ReID chain: mmdet's BaseReID +
LinearReIDHead (BNNeck) + TripletLoss on mmdpal's Market-1501 / MSMT17
(configs/downstream/reid/).

Chain: a student checkpoint -> tools/train.py (two iterations, P x K
batches) -> tools/test.py with mmdpal's ReIDMetric, on a generated Market
folder; the real configs build and load the student strictly.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdpal_testing import (REPO, TINY_CONFIGS, build_with_student,
                            evaluate_checkpoint, official_tiny_config,
                            outputs_per_image, train_from_student,
                            write_market1501)
from mmengine.config import Config

CONFIGS = osp.join(REPO, 'configs', 'downstream', 'reid')
MARKET = osp.join(CONFIGS,
                  'bnneck-reid_dpal-vit-ti_1xb64-120e_market1501-256x128.py')
MSMT = osp.join(CONFIGS,
                'bnneck-reid_dpal-vit-ti_1xb64-120e_msmt17-256x128.py')
TINY = osp.join(TINY_CONFIGS, 'tiny_reid_market1501.py')
# the authors' protocol (I2I-ReID, docs/downstream.md)
MARKET_OFFICIAL = MARKET.replace('.py', '_official.py')
MSMT_OFFICIAL = osp.join(
    CONFIGS, 'bnneck-reid_dpal-vit-ti_1xb256-120e_msmt17-256x128_official.py')


def tiny_official(folder):
    """tiny_reid_market1501.py with the head, optimiser and schedule of the
    official Market config (fp32: its fp16 AMP needs CUDA); 4 heads in the
    last of the 4 blocks, one-iteration epochs."""
    return official_tiny_config(
        TINY,
        MARKET_OFFICIAL,
        osp.join(folder, 'tiny_reid_market1501_official.py'),
        copied=[
            'model.head', 'optim_wrapper.optimizer',
            'optim_wrapper.paramwise_cfg', 'param_scheduler'
        ],
        fitted={
            'model.backbone.layer_cfgs': [{}] * 3 + [dict(num_heads=4)],
            'model.head.in_channels': 32,
            'model.head.num_classes': 4,
            'param_scheduler.0.epoch_iters': 1,
            'param_scheduler.0.warmup_epochs': 1,
            'param_scheduler.0.max_epochs': 2,
        })


@pytest.mark.parametrize('config,num_ids,batch,last_heads',
                         [(MARKET, 751, 64, 6), (MSMT, 1041, 64, 6),
                          (MARKET_OFFICIAL, 751, 64, 12),
                          (MSMT_OFFICIAL, 1041, 256, 12)])
def test_config_loads_the_student_strictly(student_for, config, num_ids, batch,
                                           last_heads):
    """Every student tensor, the class token included, goes into the
    256x128 ViT whose class token is the embedding (BNNeck head: triplet on
    the 192-d embedding, identity loss on its BN copy); the official
    configs have 12 heads in the last block."""
    path, student = student_for(config)
    cfg = Config.fromfile(config)
    model = build_with_student(config, 'mmdet', path)
    backbone = model.backbone.state_dict()
    assert set(backbone) == set(student)
    for key in student:
        assert torch.equal(backbone[key], student[key]), key
    assert model.head.classifier.out_features == num_ids
    assert model.backbone.layers[-1].attn.num_heads == last_heads
    model.eval()
    with torch.no_grad():
        emb = model(torch.rand(2, 3, 256, 128), mode='tensor')
    assert emb.shape == (2, 192)  # the fc_out embedding
    assert cfg.optim_wrapper.optimizer.lr == 2e-4
    assert cfg.train_cfg.max_iters == 120 * cfg.epoch_iters
    sampler = cfg.train_dataloader.dataset.triplet_sampler
    assert sampler.num_ids * sampler.ins_per_id == batch


@pytest.mark.parametrize('config', [MARKET, MARKET_OFFICIAL])
def test_config_loss_is_triplet_plus_identity(student_for, config):
    """One P x K batch through the real Market model in loss mode."""
    from mmdet.structures import ReIDDataSample
    model = build_with_student(config, 'mmdet', student_for(config)[0])
    samples = []
    for pid in (0, 0, 1, 1):
        sample = ReIDDataSample()
        sample.set_gt_label(pid)
        samples.append(sample)
    losses = model(torch.rand(4, 3, 256, 128), samples, mode='loss')
    assert {'triplet_loss', 'ce_loss'} <= set(losses)
    # 751 identities (label smoothing 0.1 or none): a random classifier is
    # near log(751)
    assert 5.0 < losses['ce_loss'].item() < 8.0


def test_config_pipelines_on_a_market_folder(tmp_path):
    """The real train pipeline (flip, pad + crop, erasing, RGB
    normalisation) gives P x K batches of 256x128 images with their
    identities; the test pipeline single images with camera and query
    flag."""
    import mmdet.datasets  # noqa: F401
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    write_market1501(str(tmp_path), size=(128, 64))
    cfg = Config.fromfile(MARKET)
    init_default_scope('mmdet')
    train = DATASETS.build(
        dict(
            cfg.train_dataloader.dataset,
            data_root=str(tmp_path),
            triplet_sampler=dict(num_ids=2, ins_per_id=2)))
    batch = train[0]
    assert batch['inputs'].shape == (4, 3, 256, 128)
    assert batch['inputs'].dtype == torch.float32
    assert abs(batch['inputs'].mean().item()) < 1.5  # normalised
    labels = batch['data_samples'].gt_label.label.tolist()
    assert labels[:2] == [labels[0]] * 2 and len(set(labels)) == 2
    test = DATASETS.build(
        dict(cfg.test_dataloader.dataset, data_root=str(tmp_path)))
    sample = test[0]
    assert sample['inputs'].shape == (1, 3, 256, 128)
    assert sample['data_samples'].is_query is True
    assert sample['data_samples'].camera_id == 1


def data_options(root):
    return [
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}'
    ]


@pytest.mark.slow
@pytest.mark.parametrize('protocol', ['default', 'official'])
def test_market_chain_train_then_test(tmp_path, student_for, protocol):
    tiny = TINY if protocol == 'default' else tiny_official(str(tmp_path))
    student = student_for(tiny, tiny=True)
    root = str(tmp_path / 'Market-1501')
    written = write_market1501(root)
    options = data_options(root)
    work = str(tmp_path / 'work')
    train_from_student(
        tiny,
        work,
        options,
        student,
        checkpoint='iter_2.pth',
        cls_token_used=True)

    metrics = evaluate_checkpoint(tiny, osp.join(work, 'iter_2.pth'), work,
                                  options)
    assert set(metrics) == {'reid/mAP', 'reid/R1', 'reid/R5', 'reid/R10'}
    assert all(0.0 < v <= 1.0 for v in metrics.values()), metrics
    # the reported numbers are those of the tuned model's embeddings
    expected = rank_embeddings(tiny, student[0], osp.join(work, 'iter_2.pth'),
                               root)
    assert metrics == pytest.approx(expected)
    assert len(written['query']) == 3


def rank_embeddings(config, student, checkpoint, root):
    """mAP and CMC of the checkpoint's embeddings of the test split,
    computed here: the model run image by image, cosine distances,
    reid_ranking_scores."""
    from mmdpal.datasets import Market1501
    from mmdpal.evaluation import reid_ranking_scores
    dataset = Market1501(data_root=root, split='test')
    feats = outputs_per_image(
        config, 'mmdet', student, checkpoint, dataset,
        lambda model, inputs: model(inputs, mode='tensor')[0])
    feats = torch.nn.functional.normalize(torch.stack(feats), dim=1)
    info = [dataset.get_data_info(i) for i in range(len(dataset))]
    query = [i for i, d in enumerate(info) if d['is_query']]
    gallery = [i for i, d in enumerate(info) if not d['is_query']]
    pids = np.array([int(d['gt_label']) for d in info])
    cams = np.array([d['camera_id'] for d in info])
    dist = (1 - feats[query] @ feats[gallery].t()).numpy()
    scores = reid_ranking_scores(dist, pids[query], pids[gallery], cams[query],
                                 cams[gallery], 10)
    return {
        'reid/mAP': scores['mAP'],
        **{
            f'reid/R{k}': scores['cmc'][k - 1]
            for k in (1, 5, 10)
        }
    }


def test_groups_preprocessor_stacks_the_items_groups():
    """mmdet's PackReIDInputs packs each item as a group (1 image at test
    time, P x K in training); mmdet's BaseReID takes one group per batch.
    mmdpal's preprocessor stacks the groups, so evaluation runs at any
    batch size; a batch of images of different sizes is refused."""
    from mmengine.dataset import pseudo_collate

    import mmdpal  # noqa: F401
    from mmdpal.registry import MODELS
    pre = MODELS.build(dict(type='mmdpal.ReIDGroupsPreprocessor'))
    images = [torch.rand(1, 3, 8, 4) for _ in range(5)]
    data = pseudo_collate(
        [dict(inputs=x, data_samples=i) for i, x in enumerate(images)])
    out = pre(data)
    assert torch.equal(out['inputs'], torch.cat(images))
    assert out['data_samples'] == list(range(5))
    group = torch.rand(4, 3, 8, 4)  # one P x K item
    out = pre(pseudo_collate([dict(inputs=group, data_samples=0)]), True)
    assert torch.equal(out['inputs'], group)
    with pytest.raises(ValueError, match='different sizes'):
        pre(dict(inputs=[torch.rand(1, 3, 8, 4), torch.rand(1, 3, 6, 4)]))
    with pytest.raises(ValueError, match='batch augmentations'):
        MODELS.build(
            dict(
                type='mmdpal.ReIDGroupsPreprocessor',
                batch_augments=dict(augments=[])))
