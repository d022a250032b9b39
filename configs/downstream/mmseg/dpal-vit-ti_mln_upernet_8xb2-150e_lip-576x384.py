# DPAL ViT-Ti/16 student + UperNet on LIP human parsing (paper Table 7:
# 576x384, lr 7e-4, 150 epochs). The model is mmseg's ViT + MultiLevelNeck +
# UperNet (_base_/models/upernet_vit-b16_ln_mln.py, the model of its
# vit/vit_*_mln_upernet_* configs) with the student as backbone: blocks 3, 6,
# 9 and 12 feed the neck, which resamples them to strides 4, 8, 16 and 32.
# (The vit/*_ade20k configs themselves cannot be a base together with a
# dataset config: mmengine refuses bases that define the same keys.)
#
#   tools/dist_train.sh configs/downstream/mmseg/dpal-vit-ti_mln_upernet_8xb2-150e_lip-576x384.py 8
#   tools/dist_test.sh configs/downstream/mmseg/dpal-vit-ti_mln_upernet_8xb2-150e_lip-576x384.py \
#       work_dirs/dpal-vit-ti_mln_upernet_8xb2-150e_lip-576x384/epoch_150.pth 8
#
# Another student: --cfg-options model.init_cfg.checkpoint=PATH
_base_ = [
    'mmseg::_base_/models/upernet_vit-b16_ln_mln.py',
    '../../_base_/datasets/lip.py', 'mmseg::_base_/default_runtime.py',
    '../../_base_/models/dpal_vit-ti_student.py'
]

custom_imports = dict(imports=['mmdpal'], allow_failed_imports=False)

# Patch embedding: the student's 16x16/stride-16 conv, unchanged; 576x384
# crops give a 36x24 grid, to which the 16x8 position embedding of
# pretraining is resized (bicubic; in every forward too, for other sizes).
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    pretrained=None,
    init_cfg=_base_.student_init_cfg,
    backbone=dict(
        _base_.student_backbone,
        _delete_=True,
        img_size={{_base_.crop_size}},
        out_indices=(2, 5, 8, 11),
        final_norm=True,
    ),
    neck=dict(in_channels=[192, 192, 192, 192], out_channels=192),
    decode_head=dict(in_channels=[192, 192, 192, 192], num_classes=20),
    auxiliary_head=dict(in_channels=192, num_classes=20))

# AdamW, no weight decay on the position embedding and the norms (as mmseg's
# vit/*upernet* configs), lr 7e-4; 150 epochs, linear warm-up then poly.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=7e-4, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'ln': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
        }),
    clip_grad=None)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=0,
        end=150,
        by_epoch=True,
        convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=150, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', interval=10, save_best='mIoU',
        max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
log_processor = dict(by_epoch=True)
