# The PA-100K attribute chain shrunk for CPU tests: a 32-dim, 4-block ViT
# with 16-pixel patches (student pretrained on 64x32 crops: a 4x2 grid, the
# grid of 64x32 inputs), batch 4, two iterations. Data paths and the student
# checkpoint come from --cfg-options.
_base_ = ('../../../configs/downstream/attribute/'
          'mlc_dpal-vit-ti_1xb64-25e_pa100k-256x128.py')

model = dict(
    init_cfg=dict(pos_embed_grid=(4, 2)),
    backbone=dict(
        arch=dict(
            embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64),
        img_size=(64, 32),
        drop_path_rate=0.0),
    head=dict(in_channels=32))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(32, 64), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomCrop', crop_size=(64, 32), padding=2),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(32, 64), keep_ratio=False),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2),
]
train_cfg = dict(max_epochs=1, val_interval=100)
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=1, save_best=None))
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
