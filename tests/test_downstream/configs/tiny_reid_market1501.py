# The Market-1501 ReID chain shrunk for CPU tests: a 32-dim, 4-block ViT with
# 16-pixel patches (student pretrained on 64x32 crops: a 4x2 grid, the grid
# of 64x32 inputs), P x K = 2 identities x 2 images, two iterations. Data
# paths and the student checkpoint come from --cfg-options.
_base_ = ('../../../configs/downstream/reid/'
          'bnneck-reid_dpal-vit-ti_1xb64-120e_market1501-256x128.py')

model = dict(
    init_cfg=dict(pos_embed_grid=(4, 2)),
    backbone=dict(
        arch=dict(
            embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64),
        img_size=(64, 32),
        drop_path_rate=0.0),
    head=dict(in_channels=32, fc_channels=32, out_channels=32, num_classes=4))

train_pipeline = [
    dict(
        type='TransformBroadcaster',
        share_random_params=False,
        transforms=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(32, 64), keep_ratio=False),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
            dict(type='mmpretrain.RandomCrop', crop_size=(64, 32), padding=2),
            _base_.img_norm,
        ]),
    dict(type='PackReIDInputs', meta_keys=('flip', 'flip_direction'))
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(32, 64), keep_ratio=False), _base_.img_norm,
    dict(type='PackReIDInputs', meta_keys=('camera_id', 'is_query'))
]
train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        triplet_sampler=dict(num_ids=2, ins_per_id=2),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,  # several images per batch (the real configs: 256)
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2),
]
train_cfg = dict(max_iters=2, val_interval=100)
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=2, save_best=None))
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
