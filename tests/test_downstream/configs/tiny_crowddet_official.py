# The authors' CrowdHuman protocol shrunk for CPU tests as tiny_crowddet.py:
# a 32-dim, 4-block ViT (student pretrained on 64x32 crops: a 4x2 grid, kept
# as it is and resized in every forward: 8x12 at 128x192), their pyramid of
# 8 / 16 / 32 / 32 channels and a 32-channel FPN, batch 2, one epoch. Data
# paths and the student checkpoint come from --cfg-options
# (tests/mmdpal_testing.py).
_base_ = [
    '../../../configs/downstream/mmdet/'
    'crowddet-rcnn_dpal-vit-ti_sfp_8xb2-30e_crowdhuman_official.py',
    './tiny_mmpose_parts.py'
]

model = dict(
    init_cfg=_base_.tiny_init_cfg,
    data_preprocessor=dict(batch_augments=[
        dict(type='BatchResize', scale=(192, 128), pad_size_divisor=64)
    ]),
    backbone=dict(
        arch=_base_.tiny_arch,
        img_size=(64, 32),
        layer_cfgs=_base_.tiny_official_layer_cfgs),
    neck=[
        dict(type='mmdpal.DeconvPyramid', in_channels=32),
        dict(
            type='FPN',
            in_channels=[8, 16, 32, 32],
            out_channels=32,
            num_outs=5,
            upsample_cfg=dict(mode='bilinear', align_corners=False)),
    ],
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=64)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=200, max_per_img=100),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=200, max_per_img=100), rcnn=dict(max_per_img=50)))

param_scheduler = _base_.tiny_param_scheduler

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(192, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = _base_.tiny_loader
val_dataloader = dict(_base_.tiny_loader, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(num_ji_process=1)
test_evaluator = val_evaluator

train_cfg = _base_.tiny_train_cfg
default_hooks = _base_.tiny_default_hooks
