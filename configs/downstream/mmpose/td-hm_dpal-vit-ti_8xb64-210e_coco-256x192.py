# DPAL ViT-Ti/16 student on COCO keypoints, ViTPose recipe (paper Table 7:
# 256x192, AdamW lr 5e-4, 210 epochs, layer-wise lr decay). Only the backbone
# (192 dims, 12 blocks, 6 heads) and how it is loaded differ from ViTPose-S.
#
#   python tools/model_converters/extract_student.py \
#       work_dirs/vit-ti_path-b_lup1m/epoch_100.pth \
#       checkpoints/dpal_vit-ti_student.pth
#   tools/dist_train.sh configs/downstream/mmpose/td-hm_dpal-vit-ti_8xb64-210e_coco-256x192.py 8
#   tools/dist_test.sh configs/downstream/mmpose/td-hm_dpal-vit-ti_8xb64-210e_coco-256x192.py \
#       work_dirs/td-hm_dpal-vit-ti_8xb64-210e_coco-256x192/best_coco_AP_epoch_N.pth 8
#
# Another student: --cfg-options model.init_cfg.checkpoint=PATH
_base_ = [
    'mmpose::body_2d_keypoint/topdown_heatmap/coco/'
    'td-hm_ViTPose-small_8xb64-210e_coco-256x192.py',
    '../../_base_/models/dpal_vit-ti_student.py'
]

# the base's import (layer-decay optimizer constructor) plus mmdpal
custom_imports = dict(
    imports=[
        'mmpose.engine.optim_wrappers.layer_decay_optim_wrapper', 'mmdpal'
    ],
    allow_failed_imports=False)

# Patch embedding, pretraining vs fine-tuning: DPAL trains a 16x16/stride-16
# conv on 256x128 crops (a 16x8 grid); ViTPose pads it by 2 px
# (patch_cfg=dict(padding=2), kept from the base). The kernel is the same
# (192, 3, 16, 16) tensor, loaded as is; 256x192 still gives a 16x12 grid
# ((256 + 4 - 16) // 16 + 1 = 16, (192 + 4 - 16) // 16 + 1 = 12), sampled 2 px
# further up-left. The 16x8 position embedding (plus its class-token slot,
# dropped with the class token) is resized bicubically to 16x12.
model = dict(
    # The whole model's init_cfg loads the student into model.backbone and
    # fails on any missing / unexpected / mis-shaped key
    # (mmdpal/models/utils/strict_pretrained.py says why not on the backbone).
    init_cfg=_base_.student_init_cfg,
    backbone=dict(arch=_base_.student_arch, init_cfg=None),
    head=dict(in_channels=192))
