# The authors' protocol for COCO keypoints (their
# td-hm_ViTPose-dpal-t_8xb64-210e_coco-256x192.py in
# stoa-xh91/Human-centric-Vision-Perception), on stock mmpose with the
# official student (12 heads in the last block): only what differs from
# td-hm_dpal-vit-ti_8xb64-210e_coco-256x192.py, one row each in
# docs/downstream.md.
#
#   tools/dist_train.sh configs/downstream/mmpose/td-hm_dpal-vit-ti_8xb128-210e_coco-256x192_official.py 8
#   tools/dist_test.sh configs/downstream/mmpose/td-hm_dpal-vit-ti_8xb128-210e_coco-256x192_official.py CKPT 8
#
# The student: extract_student.py of configs/dpal/vit-ti_path-b_lup1m_official.py,
# or the authors' DPAL-ViT-T.pth converted to mmdpal's names; another one:
# --cfg-options model.init_cfg.checkpoint=PATH
_base_ = './td-hm_dpal-vit-ti_8xb64-210e_coco-256x192.py'

# Their ViT: class token kept, 1 + 16x8 position embedding resampled as a
# flat 1-D sequence in every forward (128 -> 192), padding 2, no drop path,
# 12 heads in the last block (configs/_base_/models/dpal_vit-ti_student.py).
# Every student tensor, class token included, is loaded as it is.
model = dict(backbone=dict(_base_.official_pose_backbone, _delete_=True))

# Their layer-wise lr decay (0.75) is effectively off: only the class token,
# position and patch embeddings get 0.75 ** 13 of the lr, the blocks the
# head's (a quirk of mmpose's block naming, reproduced on purpose in
# mmdpal.ViTLayerDecayOptimWrapperConstructor). Their custom_keys were
# ignored by that constructor, and are dropped here.
optim_wrapper = dict(
    constructor='mmdpal.ViTLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        _delete_=True,
        num_layers=12,
        layer_decay_rate=0.75,
        scale_blocks=False))

train_dataloader = dict(batch_size=128)  # per GPU (theirs is named 8xb64)

# Ground-truth boxes at test (their bbox_file is commented out)
val_dataloader = dict(dataset=dict(bbox_file=None))
test_dataloader = val_dataloader
