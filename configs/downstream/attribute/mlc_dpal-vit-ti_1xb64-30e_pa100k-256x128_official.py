# The authors' PA-100K protocol (Human-centric-Vision-Perception,
# attribute_recognition: run.sh with configs/vit_tiny_pa100k.yaml, Jia et
# al.'s PAR trainer) on mmpretrain, with the official student (12 heads in
# the last block). docs/downstream.md lists each difference from
# mlc_dpal-vit-ti_1xb64-25e_pa100k-256x128.py with its reason.
#
#   python tools/train.py configs/downstream/attribute/mlc_dpal-vit-ti_1xb64-30e_pa100k-256x128_official.py
_base_ = './mlc_dpal-vit-ti_1xb64-25e_pa100k-256x128.py'

# no drop path (their ViT's default); BCE weighted by the training set's
# positive ratios (LOSS.SAMPLE_WEIGHT 'weight'); torch's default Linear init
model = dict(
    backbone=dict(layer_cfgs=_base_.official_layer_cfgs, drop_path_rate=0.0),
    head=dict(
        loss=dict(
            _delete_=True,
            type='mmdpal.PositiveRatioBCELoss',
            num_classes={{_base_.num_attributes}}),
        init_cfg=None))
custom_hooks = [dict(type='mmdpal.PositiveRatioHook')]

# Their images as torchvision reads and resizes them
# (dataset/augmentation.py, DATASET.TYPE 'pedes'): decoded by PIL (mmcv's
# pillow decoder, EXIF orientation ignored as PIL's Image.open), resized by
# PIL with T.Resize's default bilinear, antialiased when shrinking, for
# training and testing
their_load = dict(
    type='LoadImageFromFile',
    imdecode_backend='pillow',
    color_type='color_ignore_orientation')
their_resize = dict(
    type='Resize',
    scale=(128, 256),
    keep_ratio=False,
    backend='pillow',
    interpolation='bilinear')
train_pipeline = [
    their_load,
    their_resize,
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomCrop', crop_size=(256, 128), padding=10),
    dict(type='PackInputs'),
]
test_pipeline = [
    their_load,
    their_resize,
    dict(type='PackInputs'),
]
train_dataloader = dict(drop_last=True, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# AdamW lr 1e-4 without weight decay, gradient norm clipped at 10
# (TRAIN.CLIP_GRAD); the lr divided by 10 when the loss on the validation
# split (the test split, as theirs) has not decreased for 4 epochs
# (ReduceLROnPlateau(factor=0.1, patience=4) stepped with valid_loss)
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.),
    clip_grad=dict(max_norm=10.0))
param_scheduler = [
    dict(
        type='ReduceOnPlateauLR',
        monitor='par/loss',
        rule='less',
        factor=0.1,
        patience=4,
        by_epoch=True)
]
val_evaluator = [
    dict(type='mmdpal.PedestrianAttributeMetric'),
    dict(type='mmdpal.PositiveRatioBCEMetric')
]
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=30, val_interval=1)
