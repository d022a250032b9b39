# The authors' protocol for COCO-WholeBody (their
# td-hm_dpal-vit-t_8xb64-210e_coco-wholebody-256x192.py in
# stoa-xh91/Human-centric-Vision-Perception), on stock mmpose with the
# official student (12 heads in the last block): only what differs from
# td-hm_dpal-vit-ti_8xb64-210e_coco-wholebody-256x192.py, one row each in
# docs/downstream.md.
#
#   tools/dist_train.sh configs/downstream/mmpose/td-hm_dpal-vit-ti_8xb256-210e_coco-wholebody-256x192_official.py 8
#   tools/dist_test.sh configs/downstream/mmpose/td-hm_dpal-vit-ti_8xb256-210e_coco-wholebody-256x192_official.py CKPT 8
#
# Another student: --cfg-options model.init_cfg.checkpoint=PATH
_base_ = './td-hm_dpal-vit-ti_8xb64-210e_coco-wholebody-256x192.py'

# Unlike their body configs, their WholeBody ViT drops the class token
# (with_cls_token=False, img_size=(256, 192)): the 16x8 position embedding
# is resized to 16x12 once, at loading, as ours; so the backbone stays
# mmpretrain's, with their 12-head last block and no drop path.
model = dict(
    backbone=dict(drop_path_rate=0., layer_cfgs=_base_.official_layer_cfgs))

# Adam 5e-4 without weight decay, no layer decay, no gradient clipping
# (the optimizer of mmpose's SimpleBaseline WholeBody config)
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper', optimizer=dict(type='Adam', lr=5e-4))

train_dataloader = dict(batch_size=256)  # per GPU

# Ground-truth boxes at test (their bbox_file is commented out)
val_dataloader = dict(dataset=dict(bbox_file=None))
test_dataloader = val_dataloader
