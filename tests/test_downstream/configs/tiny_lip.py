# The LIP chain shrunk for CPU tests: a 32-dim, 4-block ViT (student
# pretrained on 64x32 crops: a 4x2 grid), 96x64 crops, a 32-channel UperNet,
# batch 2, one epoch. Data paths and the student checkpoint come from
# --cfg-options (tests/mmdpal_testing.py).
_base_ = ('../../../configs/downstream/mmseg/'
          'dpal-vit-ti_mln_upernet_8xb2-150e_lip-576x384.py')

crop_size = (96, 64)
model = dict(
    init_cfg=dict(pos_embed_grid=(4, 2)),
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(
            embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64),
        img_size=crop_size,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.0),
    neck=dict(in_channels=[32, 32, 32, 32], out_channels=32),
    decode_head=dict(in_channels=[32, 32, 32, 32], channels=32),
    auxiliary_head=dict(in_channels=32, channels=16))

param_scheduler = [
    dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2),
]

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(64, 96),
        ratio_range=(0.8, 1.2),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5, swap_seg_labels=_base_.flip_pairs),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 96), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=1, val_interval=100)
default_hooks = dict(logger=dict(interval=1), visualization=dict(draw=False))
