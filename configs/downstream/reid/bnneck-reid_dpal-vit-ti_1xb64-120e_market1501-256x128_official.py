# The authors' Market-1501 protocol (Human-centric-Vision-Perception,
# I2I-ReID: train.sh with configs/market/dpal_vit_tiny.yml, a TransReID
# trainer) on mmdet's BaseReID, with the official student (12 heads in the
# last block). docs/downstream.md lists each difference from
# bnneck-reid_dpal-vit-ti_1xb64-120e_market1501-256x128.py with its reason.
#
#   python tools/train.py configs/downstream/reid/bnneck-reid_dpal-vit-ti_1xb64-120e_market1501-256x128_official.py
_base_ = './bnneck-reid_dpal-vit-ti_1xb64-120e_market1501-256x128.py'

# BNNeck without a Linear before it, BN bias frozen at 0, bias-free
# classifier; cross-entropy without label smoothing (IF_LABELSMOOTH 'off'),
# batch-hard triplet with a soft margin (NO_MARGIN True)
model = dict(
    backbone=dict(layer_cfgs=_base_.official_layer_cfgs),
    head=dict(
        _delete_=True,
        type='mmdpal.BNNeckReIDHead',
        in_channels=192,
        num_classes=751,
        loss_cls=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0),
        loss_triplet=dict(type='mmdpal.SoftMarginTripletLoss')))

# Their images as torchvision reads and resizes them
# (datasets/make_dataloader.py): decoded by PIL (mmcv's pillow decoder; RGB
# or BGR makes no difference to a per-channel resize; EXIF orientation
# ignored, as PIL's Image.open), resized by PIL,
# antialiased when shrinking: bicubic for training (T.Resize(...,
# interpolation=3)), bilinear for testing (T.Resize's default).
img_norm = _base_.img_norm
their_load = dict(
    type='LoadImageFromFile',
    imdecode_backend='pillow',
    color_type='color_ignore_orientation')
train_pipeline = [
    dict(
        type='TransformBroadcaster',
        share_random_params=False,
        transforms=[
            their_load,
            dict(
                type='Resize',
                scale=(128, 256),
                keep_ratio=False,
                backend='pillow',
                interpolation='bicubic'),
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
    their_load,
    dict(
        type='Resize',
        scale=(128, 256),
        keep_ratio=False,
        backend='pillow',
        interpolation='bilinear'), img_norm,
    dict(type='PackReIDInputs', meta_keys=('camera_id', 'is_query'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# train.sh overrides the yml's SGD: AdamW, lr 2e-4, weight decay 1e-4 on
# every parameter, biases (norms' included) at twice the lr
# (SOLVER.BIAS_LR_FACTOR 2); fp16 autocast + GradScaler as their processor
base_lr = 2e-4
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='float16',
    loss_scale='dynamic',
    optimizer=dict(_delete_=True, type='AdamW', lr=base_lr, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'bias': dict(lr_mult=2.0)}))
# timm's cosine with 20 warm-up epochs, stepped per epoch, from 0.01 x lr,
# down to 0.002 x lr (solver/scheduler_factory.py), written per iteration
# (epoch_iters per epoch) for the iteration loop: by_epoch=False makes the
# Runner end it at max_iters (without it, at max_epochs, which is 1 here)
param_scheduler = [
    dict(
        type='mmdpal.TimmCosineLR',
        epoch_iters={{_base_.epoch_iters}},
        warmup_epochs=20,
        max_epochs=120,
        warmup_lr=0.01 * base_lr,
        eta_min=0.002 * base_lr,
        by_epoch=False)
]
