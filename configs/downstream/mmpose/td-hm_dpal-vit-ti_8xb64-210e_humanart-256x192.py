# DPAL ViT-Ti/16 student on Human-Art (cross-style pose, paper Table 2),
# ViTPose recipe as for COCO (256x192, AdamW lr 5e-4, 210 epochs, layer-wise
# lr decay). Only the backbone and how it is loaded differ from ViTPose-S.
# Patch embedding and position embedding: see the COCO config
# (td-hm_dpal-vit-ti_8xb64-210e_coco-256x192.py).
#
#   tools/dist_train.sh configs/downstream/mmpose/td-hm_dpal-vit-ti_8xb64-210e_humanart-256x192.py 8
#   tools/dist_test.sh configs/downstream/mmpose/td-hm_dpal-vit-ti_8xb64-210e_humanart-256x192.py CKPT 8
#
# Another student: --cfg-options model.init_cfg.checkpoint=PATH
_base_ = [
    'mmpose::body_2d_keypoint/topdown_heatmap/humanart/'
    'td-hm_ViTPose-small_8xb64-210e_humanart-256x192.py',
    '../../_base_/models/dpal_vit-ti_student.py'
]

custom_imports = dict(
    imports=[
        'mmpose.engine.optim_wrappers.layer_decay_optim_wrapper', 'mmdpal'
    ],
    allow_failed_imports=False)

model = dict(
    init_cfg=_base_.student_init_cfg,
    backbone=dict(arch=_base_.student_arch, init_cfg=None),
    head=dict(in_channels=192))
