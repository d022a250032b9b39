# DPAL ViT-Ti/16 student in CrowdDet on CrowdHuman (paper Table 7: 1400x800,
# lr 2e-4, 30 epochs). The ResNet-50 + FPN of mmdet's CrowdDet become the
# student + a ViTDet simple feature pyramid (mmdpal.SimpleFeaturePyramid: the
# one stride-16 map -> strides 4, 8, 16, 32, and 64 by max-pool for the
# five-stride RPN); SGD becomes AdamW at 2e-4. Data, heads, schedule and
# CrowdHumanMetric (AP, MR^-2, JI) are mmdet's.
#
#   tools/dist_train.sh configs/downstream/mmdet/crowddet-rcnn_dpal-vit-ti_sfp_8xb2-30e_crowdhuman.py 8
#   tools/dist_test.sh configs/downstream/mmdet/crowddet-rcnn_dpal-vit-ti_sfp_8xb2-30e_crowdhuman.py \
#       work_dirs/crowddet-rcnn_dpal-vit-ti_sfp_8xb2-30e_crowdhuman/epoch_30.pth 8
#
# Another student: --cfg-options model.init_cfg.checkpoint=PATH
_base_ = [
    'mmdet::crowddet/crowddet-rcnn_r50_fpn_8xb2-30e_crowdhuman.py',
    '../../_base_/models/dpal_vit-ti_student.py',
]

custom_imports = dict(imports=['mmdpal'], allow_failed_imports=False)

# Patch embedding: the student's 16x16/stride-16 conv, unchanged (no
# padding); the batch is padded to a multiple of 64, so the token grid is a
# multiple of 4 and every pyramid level lines up. The 16x8 position embedding
# of pretraining is resized once to the 50x88 grid of img_size and, in every
# forward, to the grid of the batch. Attention is global: use a GPU build of
# torch whose scaled_dot_product_attention has the memory-efficient kernels.
model = dict(
    init_cfg=_base_.student_init_cfg,
    backbone=dict(
        _base_.student_backbone,
        _delete_=True,
        img_size=(800, 1408),
    ),
    neck=dict(
        _delete_=True,
        type='mmdpal.SimpleFeaturePyramid',
        in_channels=192,
        out_channels=256,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
        num_outs=5))

optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=2e-4,
        betas=(0.9, 0.999),
        weight_decay=0.1),
    paramwise_cfg=dict(
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
            'ln': dict(decay_mult=0.),
        }),
    clip_grad=dict(max_norm=1., norm_type=2))
