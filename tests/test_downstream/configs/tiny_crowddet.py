# The CrowdHuman chain shrunk for CPU tests: a 32-dim, 4-block ViT (student
# pretrained on 64x32 crops: a 4x2 grid), 128x192 inputs, a 32-channel
# pyramid, batch 2, one epoch. Data paths and the student checkpoint come
# from --cfg-options (tests/mmdpal_testing.py).
_base_ = ('../../../configs/downstream/mmdet/'
          'crowddet-rcnn_dpal-vit-ti_sfp_8xb2-30e_crowdhuman.py')

model = dict(
    init_cfg=dict(pos_embed_grid=(4, 2)),
    data_preprocessor=dict(batch_augments=[
        dict(type='BatchResize', scale=(192, 128), pad_size_divisor=64)
    ]),
    backbone=dict(
        arch=dict(
            embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64),
        img_size=(128, 192),
        drop_path_rate=0.0),
    neck=dict(in_channels=32, out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=64)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=200, max_per_img=100),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=200, max_per_img=100), rcnn=dict(max_per_img=50)))

param_scheduler = [
    dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2),
]

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(192, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False)
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(num_ji_process=1)
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=1, val_interval=100)
default_hooks = dict(logger=dict(interval=1))
