# DPAL: ViT-Ti/16 student, PATH-B (ViT-B/16) teacher, D-PaDe, three losses.
# Student: Table 5 of the paper (192 dims, 12 blocks, 6 heads; DeiT-Ti has 3).
student_arch = dict(
    embed_dims=192, num_layers=12, num_heads=6, feedforward_channels=768)

model = dict(
    type='DPALDistiller',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='mmpretrain.VisionTransformer',
        arch=student_arch,
        img_size=(256, 128),
        patch_size=16,
        out_type='raw',  # class token + patch tokens, final-normed
        final_norm=True,
        drop_path_rate=0.0),
    teacher=dict(
        type='ViTTeacher',
        backbone=dict(
            type='mmpretrain.VisionTransformer',
            arch='b',
            img_size=224,  # PATH's 14x14 position grid, resized bicubically
            patch_size=16),
        # tools/model_converters/path_to_mmdpal.py writes this file
        checkpoint='checkpoints/path-b_mmdpal.pth',
        # same patch size (16) -> same grid, nothing to resize
        align='resize_input',
        shape_mask='attention',  # paper: class-token attention (Eq. 2)
        relation='attention'),  # paper: last-layer attention (Eq. 6)
    decoder=dict(
        type='DynamicPatternDecoder', in_dims=192, out_dims=768, num_heads=6),
    global_loss=dict(type='GlobalAlignLoss', loss_weight=1.0),  # lambda_g
    local_loss=dict(type='LocalAlignLoss', loss_weight=1.0),  # lambda_l
    relation_loss=dict(type='RelationAlignLoss', loss_weight=1.0))  # lambda_r
