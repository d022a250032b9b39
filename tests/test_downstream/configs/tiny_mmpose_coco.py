# The COCO keypoint chain shrunk for CPU tests: a 32-dim, 4-block ViT with
# 16-pixel patches (student pretrained on 64x32 crops: a 4x2 grid), 64x48
# inputs, batch 2, one epoch. Data paths and the student checkpoint come from
# --cfg-options (tests/mmdpal_testing.py).
_base_ = ('../../../configs/downstream/mmpose/'
          'td-hm_dpal-vit-ti_8xb64-210e_coco-256x192.py')

codec = dict(
    type='UDPHeatmap', input_size=(48, 64), heatmap_size=(12, 16), sigma=2)

model = dict(
    init_cfg=dict(pos_embed_grid=(4, 2)),
    backbone=dict(
        arch=dict(
            embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64),
        img_size=(64, 48),
        drop_path_rate=0.0),
    head=dict(in_channels=32, deconv_out_channels=(16, 16), decoder=codec),
    test_cfg=dict(flip_test=False))

optim_wrapper = dict(paramwise_cfg=dict(num_layers=4))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=2, start_factor=0.5, by_epoch=False),
]

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='TopdownAffine', input_size=codec['input_size'], use_udp=True),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size'], use_udp=True),
    dict(type='PackPoseInputs')
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(bbox_file=None, pipeline=val_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=1, val_interval=100)
default_hooks = dict(logger=dict(interval=1))
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
