# The DPAL ViT-Ti/16 student as a fine-tuning backbone, for the configs in
# configs/downstream/. Variables only (no `model`), so that it can be a base
# next to any toolbox's own config without clashing keys:
#   _base_ = ['mmpose::...', '../../_base_/models/dpal_vit-ti_student.py']
#   model = dict(init_cfg=_base_.student_init_cfg,
#                backbone=dict(_base_.student_backbone, img_size=(256, 192)))
# tools/model_converters/extract_student.py writes the checkpoint; another
# one: --cfg-options model.init_cfg.checkpoint=PATH
student_checkpoint = 'checkpoints/dpal_vit-ti_student.pth'

# Table 5: 192 dims, 12 blocks, 6 heads (DeiT-Ti has 3)
student_arch = dict(
    embed_dims=192, num_layers=12, num_heads=6, feedforward_channels=768)

# The whole model's init_cfg loads the student into model.backbone and fails
# on any missing / unexpected / mis-shaped key; the 16x8 position grid of
# pretraining (256x128 / 16) is resized to the backbone's
# (mmdpal/models/utils/strict_pretrained.py says why not on the backbone).
student_init_cfg = dict(
    type='mmdpal.StrictPretrained',
    checkpoint=student_checkpoint,
    prefix='backbone.',
    pos_embed_grid=(16, 8),
    unused_keys=['cls_token'])

# The official student (configs/dpal/vit-ti_path-b_lup1m_official.py) has 12
# heads in its last block, as the authors' (dpal_official_to_mmdpal.py); the
# tensors are the same, but its checkpoint records the heads (meta['arch'])
# and StrictPretrained refuses a 6-head backbone for it: load it with
#   model = dict(backbone=dict(layer_cfgs=_base_.official_layer_cfgs))
official_layer_cfgs = [dict()] * 11 + [dict(num_heads=12)]

# The student as a feature-map backbone (no class token downstream).
student_backbone = dict(
    type='mmpretrain.VisionTransformer',
    arch=student_arch,
    patch_size=16,
    qkv_bias=True,
    drop_path_rate=0.1,
    with_cls_token=False,
    out_type='featmap',
    init_cfg=None)

# The student as an embedding backbone (ReID, attributes): the class token of
# 256x128 inputs, the token DPAL aligns with the teacher's global pattern
# (Eq. 4); every student tensor, class token included, is loaded.
student_cls_token_backbone = dict(
    student_backbone,
    img_size=(256, 128),
    with_cls_token=True,
    out_type='cls_token')

# The official student as the authors fine-tune it for pose
# (configs/downstream/mmpose/*_official.py; docs/downstream.md has one row
# per difference): their ViT (stoa-xh91/Human-centric-Vision-Perception,
# pose-estimation/mmpose/models/backbones/vit.py) keeps the class token in
# the sequence, stores the pretrained 1 + 16x8 position embedding as it is
# (img_size=(256, 128), padding 2 gives the same 16x8) and resamples its
# patch part as one flat 1-D sequence in every forward (128 -> 192 positions
# at 256x192); 12 heads in the last block, no drop path. Human-Art and
# CrowdPose set their img_size=(224, 224): a 2-D resize to 14x14 at loading,
# then 1-D 196 -> 192 in every forward.
official_pose_backbone = dict(
    student_backbone,
    type='mmdpal.ResampledPosViT',
    pos_embed_resize='sequence_1d',
    img_size=(256, 128),
    patch_cfg=dict(padding=2),
    with_cls_token=True,
    drop_path_rate=0.,
    layer_cfgs=official_layer_cfgs)
