# DPAL ViT-Ti/16 student on PA-100K pedestrian attribute recognition (paper
# Table 7: SOLIDER's recipe, 256x128, lr 1e-4, 25 epochs; Table 1 reports the
# label-based mA).
#
# mmpretrain's multi-label classifier: ImageClassifier with the student's
# class token feeding MultiLabelLinearClsHead (26 sigmoid outputs, binary
# cross-entropy), run in mmpretrain's scope. The metric is mmdpal's
# PedestrianAttributeMetric (label-based mA, instance-based accuracy,
# precision, recall, F1 as in Jia et al.'s PAR code, which SOLIDER uses).
# Training uses the train and val splits, testing the test split (as that
# code does for PA-100K).
#
#   python tools/model_converters/extract_student.py \
#       work_dirs/vit-ti_path-b_lup1m/epoch_100.pth \
#       checkpoints/dpal_vit-ti_student.pth
#   python tools/train.py configs/downstream/attribute/mlc_dpal-vit-ti_1xb64-25e_pa100k-256x128.py
#   python tools/test.py configs/downstream/attribute/mlc_dpal-vit-ti_1xb64-25e_pa100k-256x128.py \
#       work_dirs/mlc_dpal-vit-ti_1xb64-25e_pa100k-256x128/epoch_25.pth
#
# Another student: --cfg-options model.init_cfg.checkpoint=PATH
_base_ = [
    'mmpretrain::_base_/default_runtime.py',
    '../../_base_/models/dpal_vit-ti_student.py'
]

custom_imports = dict(imports=['mmdpal'], allow_failed_imports=False)

num_attributes = 26
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    # every student tensor, class token included, into the 256x128 ViT
    init_cfg=_base_.student_init_cfg,
    backbone=_base_.student_cls_token_backbone,
    neck=None,
    head=dict(
        type='MultiLabelLinearClsHead',
        num_classes=num_attributes,
        in_channels=192,
        loss=dict(type='CrossEntropyLoss', use_sigmoid=True),
        init_cfg=dict(type='Normal', layer='Linear', std=0.01)))

data_root = 'data/PA-100K/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 256), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomCrop', crop_size=(256, 128), padding=10),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 256), keep_ratio=False),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='mmdpal.PA100K',
        data_root=data_root,
        split=('train', 'val'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='mmdpal.PA100K',
        data_root=data_root,
        split='test',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmdpal.PedestrianAttributeMetric')
test_evaluator = val_evaluator

# The paper gives image size, lr and epochs; AdamW (weight decay 5e-4) and
# the warm-up + cosine schedule are this config's choice.
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-4, weight_decay=5e-4))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=25),
]
train_cfg = dict(by_epoch=True, max_epochs=25, val_interval=5)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook',
        interval=5,
        save_best='par/mA',
        max_keep_ckpts=2))
