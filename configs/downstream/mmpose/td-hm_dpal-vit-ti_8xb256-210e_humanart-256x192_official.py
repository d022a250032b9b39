# The authors' protocol for Human-Art (their
# td-hm_ViTPose-dpal-t_8xb64-210e_humanart-256x192.py in
# stoa-xh91/Human-centric-Vision-Perception), on stock mmpose with the
# official student (12 heads in the last block): only what differs from
# td-hm_dpal-vit-ti_8xb64-210e_humanart-256x192.py, one row each in
# docs/downstream.md.
#
#   tools/dist_train.sh configs/downstream/mmpose/td-hm_dpal-vit-ti_8xb256-210e_humanart-256x192_official.py 8
#   tools/dist_test.sh configs/downstream/mmpose/td-hm_dpal-vit-ti_8xb256-210e_humanart-256x192_official.py CKPT 8
#
# Another student: --cfg-options model.init_cfg.checkpoint=PATH
_base_ = './td-hm_dpal-vit-ti_8xb64-210e_humanart-256x192.py'

# Their ViT as for COCO (class token kept, 1-D position resample in every
# forward, padding 2, no drop path, 12 heads in the last block), but with
# their img_size=(224, 224): the 1 + 16x8 position embedding is resized to
# 1 + 14x14 (2-D, bicubic) when the student is loaded, then resampled
# 196 -> 192 as a 1-D sequence in every forward.
model = dict(
    backbone=dict(
        _base_.official_pose_backbone, _delete_=True, img_size=(224, 224)))

# Layer decay 0.8, effectively off: only the embeddings get 0.8 ** 13 of
# the lr (see the COCO official config).
optim_wrapper = dict(
    constructor='mmdpal.ViTLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        _delete_=True, num_layers=12, layer_decay_rate=0.8,
        scale_blocks=False))

train_dataloader = dict(batch_size=256)  # per GPU

# Ground-truth boxes at test (their bbox_file is commented out)
val_dataloader = dict(dataset=dict(bbox_file=None))
test_dataloader = val_dataloader
