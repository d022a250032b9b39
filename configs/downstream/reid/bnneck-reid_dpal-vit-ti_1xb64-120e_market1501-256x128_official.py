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
