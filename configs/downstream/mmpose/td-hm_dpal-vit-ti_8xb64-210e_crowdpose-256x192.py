# DPAL ViT-Ti/16 student on CrowdPose (14 keypoints, crowded scenes, paper
# Table 1), ViTPose recipe (Table 7: 256x192, AdamW lr 5e-4, 210 epochs,
# layer-wise lr decay). mmpose has no ViTPose config for CrowdPose, so this
# inherits its SimpleBaseline one (ResNet-50 + deconvolution heatmap head,
# MSRA heatmaps, the detector's boxes at test, CocoMetric with
# iou_type='keypoints_crowd': AP, AP(E/M/H)) and replaces the backbone, the
# head's input and up-sampling (two deconvolutions: stride 16 -> 4) and the
# optimizer, as the COCO-WholeBody config does. The authors' protocol:
# td-hm_dpal-vit-ti_8xb64-210e_crowdpose-256x192_official.py.
#
#   tools/dist_train.sh configs/downstream/mmpose/td-hm_dpal-vit-ti_8xb64-210e_crowdpose-256x192.py 8
#   tools/dist_test.sh configs/downstream/mmpose/td-hm_dpal-vit-ti_8xb64-210e_crowdpose-256x192.py CKPT 8
#
# Another student: --cfg-options model.init_cfg.checkpoint=PATH
_base_ = [
    'mmpose::body_2d_keypoint/topdown_heatmap/crowdpose/'
    'td-hm_res50_8xb64-210e_crowdpose-256x192.py',
    '../../_base_/models/dpal_vit-ti_student.py',
    '../../_base_/schedules/vitpose_layer_decay.py'
]

custom_imports = dict(
    imports=[
        'mmpose.engine.optim_wrappers.layer_decay_optim_wrapper', 'mmdpal'
    ],
    allow_failed_imports=False)

optim_wrapper = _base_.vitpose_optim_wrapper

# Patch embedding as in ViTPose: the student's 16x16 kernels with 2 px of
# padding give a 16x12 grid on 256x192 (see the COCO config).
model = dict(
    init_cfg=_base_.student_init_cfg,
    backbone=dict(
        _base_.student_backbone,
        _delete_=True,
        img_size=(256, 192),
        patch_cfg=dict(padding=2),
    ),
    head=dict(
        in_channels=192,
        deconv_out_channels=(256, 256),
        deconv_kernel_sizes=(4, 4)))
