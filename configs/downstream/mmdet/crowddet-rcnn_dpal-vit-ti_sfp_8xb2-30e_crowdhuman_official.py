# The authors' protocol for CrowdHuman (their
# crowddet-rcnn_dpal-vit-t_fpn_8xb2-30e_crowdhuman.py in
# stoa-xh91/Human-centric-Vision-Perception), on stock mmdet with the
# official student (12 heads in the last block): only what differs from
# crowddet-rcnn_dpal-vit-ti_sfp_8xb2-30e_crowdhuman.py, one row each in
# docs/downstream.md. Data, heads, schedule and CrowdHumanMetric are mmdet's
# CrowdDet (R-50 FPN) config's in both.
#
#   tools/dist_train.sh configs/downstream/mmdet/crowddet-rcnn_dpal-vit-ti_sfp_8xb2-30e_crowdhuman_official.py 8
#   tools/dist_test.sh configs/downstream/mmdet/crowddet-rcnn_dpal-vit-ti_sfp_8xb2-30e_crowdhuman_official.py CKPT 8
#
# Another student: --cfg-options model.init_cfg.checkpoint=PATH
_base_ = './crowddet-rcnn_dpal-vit-ti_sfp_8xb2-30e_crowdhuman.py'

model = dict(
    # Their detection ViT: class token kept; the pretrained 1 + 16x8 position
    # embedding stored as it is (img_size=(256, 128)) and resized in every
    # forward by DINO's bicubic scale_factor=(grid + 0.1) / (16, 8); no patch
    # padding; LayerNorm eps 1e-5 (nn.LayerNorm's default: their detection
    # ViT passes no eps, the pretraining and pose ViTs use 1e-6); no drop
    # path; 12 heads in the last block.
    backbone=dict(
        _base_.student_backbone,
        _delete_=True,
        type='mmdpal.ResampledPosViT',
        pos_embed_resize='dino_scale_factor',
        img_size=(256, 128),
        with_cls_token=True,
        norm_cfg=dict(type='LN', eps=1e-5),
        drop_path_rate=0.,
        layer_cfgs=_base_.official_layer_cfgs),
    # Their pyramid, inside their backbone (deconv-BN-GELU-deconv to stride
    # 4, deconv to 8, identity at 16, stride-2 conv to 32), then mmdet's FPN
    # (bilinear up-sampling, five levels, as mmdet's CrowdDet config)
    neck=[
        dict(type='mmdpal.DeconvPyramid', in_channels=192),
        dict(
            type='FPN',
            in_channels=[48, 96, 192, 192],
            out_channels=256,
            num_outs=5,
            upsample_cfg=dict(mode='bilinear', align_corners=False)),
    ])

# AdamW 2e-4, weight decay 1e-4 on every parameter, no gradient clipping
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4))
