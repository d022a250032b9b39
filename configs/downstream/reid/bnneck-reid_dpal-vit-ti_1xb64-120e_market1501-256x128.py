# DPAL ViT-Ti/16 student on Market-1501 image-to-image person ReID (paper
# Table 7: SOLIDER's recipe, 256x128, lr 2e-4, 120 epochs; Table 1 reports
# Rank-1).
#
# Built on mmdet 3.3's ReID parts, run in mmdet's scope: BaseReID (an
# mmpretrain ImageClassifier), LinearReIDHead, TripletLoss, PackReIDInputs,
# with the P x K batches of its ReIDDataset (mmdpal's Market1501 / MSMT17
# read the released folders and sample as it does). mmdet's parts rather
# than mmpretrain's ImageToImageRetriever: they already are SOLIDER's BNNeck
# recipe (the triplet loss on the embedding, the label-smoothed identity
# loss on its batch-normalised copy), where the retriever has neither a
# triplet loss nor identity sampling. The
# metric (mAP, CMC with the same-camera filtering of the Market/MSMT
# protocol) is mmdpal's ReIDMetric: mmdet's ReIDMetrics has no cameras.
#
#   python tools/model_converters/extract_student.py \
#       work_dirs/vit-ti_path-b_lup1m/epoch_100.pth \
#       checkpoints/dpal_vit-ti_student.pth
#   python tools/train.py configs/downstream/reid/bnneck-reid_dpal-vit-ti_1xb64-120e_market1501-256x128.py
#   python tools/test.py configs/downstream/reid/bnneck-reid_dpal-vit-ti_1xb64-120e_market1501-256x128.py \
#       work_dirs/bnneck-reid_dpal-vit-ti_1xb64-120e_market1501-256x128/iter_24240.pth
#
# Another student: --cfg-options model.init_cfg.checkpoint=PATH
_base_ = [
    'mmdet::_base_/default_runtime.py',
    '../../_base_/models/dpal_vit-ti_student.py'
]

custom_imports = dict(imports=['mmdpal'], allow_failed_imports=False)

# The embedding is the student's class token: the token DPAL aligns with the
# teacher's global pattern (Eq. 4), loaded with the rest of the student (all
# tensors, class token included). The 16x8 position grid of pretraining is
# the grid of 256x128 inputs.
model = dict(
    type='BaseReID',
    # images are normalised (and turned RGB) in the pipeline; mmdpal's
    # preprocessor stacks the items' image groups into one batch, so that
    # mmdet's BaseReID (one group per batch otherwise) evaluates at any
    # batch size
    data_preprocessor=dict(type='mmdpal.ReIDGroupsPreprocessor'),
    init_cfg=_base_.student_init_cfg,
    backbone=_base_.student_cls_token_backbone,
    neck=None,
    # BNNeck: the triplet loss on the embedding (fc_out), the identity loss
    # on its BatchNorm1d copy; the embedding is what is ranked at test time
    head=dict(
        type='LinearReIDHead',
        num_fcs=0,
        in_channels=192,
        fc_channels=192,
        out_channels=192,
        num_classes=751,
        loss_cls=dict(
            type='mmpretrain.LabelSmoothLoss',
            label_smooth_val=0.1,
            loss_weight=1.0),
        loss_triplet=dict(type='TripletLoss', margin=0.3, loss_weight=1.0)))

# data: the released Market-1501 folder
data_root = 'data/market1501/Market-1501-v15.09.15/'
img_norm = dict(
    type='Normalize',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
# SOLIDER's augmentation: flip, 10-pixel padding + random crop, erasing
train_pipeline = [
    dict(
        type='TransformBroadcaster',
        share_random_params=False,
        transforms=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(128, 256), keep_ratio=False),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
            dict(
                type='mmpretrain.RandomCrop', crop_size=(256, 128),
                padding=10),
            dict(
                type='mmpretrain.RandomErasing',
                erase_prob=0.5,
                mode='rand',
                min_area_ratio=0.02,
                max_area_ratio=0.4),
            img_norm,
        ]),
    dict(type='PackReIDInputs', meta_keys=('flip', 'flip_direction'))
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 256), keep_ratio=False), img_norm,
    dict(type='PackReIDInputs', meta_keys=('camera_id', 'is_query'))
]
# one item = one P x K batch: 16 identities x 4 images (SOLIDER's 64)
train_dataloader = dict(
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='mmdpal.Market1501',
        data_root=data_root,
        split='train',
        triplet_sampler=dict(num_ids=16, ins_per_id=4),
        pipeline=train_pipeline))
# 256 test images per batch (SOLIDER's); the metric ranks the queries a
# chunk at a time (MSMT17's 11,659 x 82,161 distances are never held)
val_dataloader = dict(
    batch_size=256,
    num_workers=8,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='mmdpal.Market1501',
        data_root=data_root,
        split='test',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmdpal.ReIDMetric', ranks=(1, 5, 10))
test_evaluator = val_evaluator

# Schedule. One iteration is one batch of 64 images, so an epoch of Market's
# 12,936 training images is 202 iterations: 120 epochs = 24,240 iterations,
# validated every 10 epochs. The paper gives image size, lr and epochs; SGD
# (momentum 0.9, weight decay 1e-4), the 20-epoch warm-up then cosine decay,
# the 0.3 margin and the 0.1 label smoothing are SOLIDER-REID's settings.
epoch_iters = 202
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=2e-4, momentum=0.9, weight_decay=1e-4),
    clip_grad=None)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=False,
        begin=0,
        end=20 * epoch_iters),
    dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=20 * epoch_iters,
        end=120 * epoch_iters,
        eta_min=1.6e-6),
]
train_cfg = dict(
    type='IterBasedTrainLoop',
    max_iters=120 * epoch_iters,
    val_interval=10 * epoch_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=10 * epoch_iters,
        save_best='reid/mAP',
        max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
