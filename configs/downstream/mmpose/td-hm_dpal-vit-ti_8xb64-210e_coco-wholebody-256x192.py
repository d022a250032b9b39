# DPAL ViT-Ti/16 student on COCO-WholeBody (133 landmarks, paper Table 1),
# ViTPose recipe (Table 7: 256x192, AdamW lr 5e-4, 210 epochs, layer-wise lr
# decay). mmpose has no ViTPose config for COCO-WholeBody, so this inherits
# its SimpleBaseline one (ResNet-50 + deconvolution heatmap head, the same
# head ViTPose's "classic decoder" is) and replaces the backbone, the head's
# input and up-sampling (two deconvolutions: stride 16 -> 4) and the
# optimizer. Its codec and pipelines (MSRA heatmaps, 64x48) are kept.
#
#   tools/dist_train.sh configs/downstream/mmpose/td-hm_dpal-vit-ti_8xb64-210e_coco-wholebody-256x192.py 8
#   tools/dist_test.sh configs/downstream/mmpose/td-hm_dpal-vit-ti_8xb64-210e_coco-wholebody-256x192.py CKPT 8
#
# Another student: --cfg-options model.init_cfg.checkpoint=PATH
_base_ = ['mmpose::wholebody_2d_keypoint/topdown_heatmap/coco-wholebody/'
          'td-hm_res50_8xb64-210e_coco-wholebody-256x192.py']

student_checkpoint = 'checkpoints/dpal_vit-ti_student.pth'

custom_imports = dict(
    imports=[
        'mmpose.engine.optim_wrappers.layer_decay_optim_wrapper', 'mmdpal'
    ],
    allow_failed_imports=False)

# ViTPose's optimizer (td-hm_ViTPose-small_8xb64-210e_coco-256x192.py); the
# layer-decay constructor itself keeps biases, norms and pos_embed out of
# weight decay.
optim_wrapper = dict(
    optimizer=dict(
        type='AdamW', lr=5e-4, betas=(0.9, 0.999), weight_decay=0.1),
    paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.8),
    constructor='LayerDecayOptimWrapperConstructor',
    clip_grad=dict(max_norm=1., norm_type=2),
)

# Patch embedding as in ViTPose: the student's 16x16 kernels with 2 px of
# padding give a 16x12 grid on 256x192 (see the COCO config).
model = dict(
    init_cfg=dict(
        type='mmdpal.StrictPretrained',
        checkpoint=student_checkpoint,
        prefix='backbone.',
        pos_embed_grid=(16, 8),  # 256x128 / 16
        unused_keys=['cls_token']),
    backbone=dict(
        _delete_=True,
        type='mmpretrain.VisionTransformer',
        arch=dict(
            embed_dims=192,
            num_layers=12,
            num_heads=6,
            feedforward_channels=768),
        img_size=(256, 192),
        patch_size=16,
        qkv_bias=True,
        drop_path_rate=0.1,
        with_cls_token=False,
        out_type='featmap',
        patch_cfg=dict(padding=2),
        init_cfg=None),
    head=dict(
        in_channels=192,
        deconv_out_channels=(256, 256),
        deconv_kernel_sizes=(4, 4)))
