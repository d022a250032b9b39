# SAIP (paper mode): a ViT-Ti/16 (DeiT-Ti: 192 dims, 12 blocks, 3 heads) on
# 256x128 anchors, its momentum teacher, the CSM head (DINO's, 65536
# prototypes), the CSR and CSS decoders and the three objectives (Eq. 1-3).
# configs/saip/saip_vit-ti_lup1m_official.py lists the code's differences.
model = dict(
    type='SAIP',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='mmpretrain.VisionTransformer',
        arch=dict(
            embed_dims=192,
            num_layers=12,
            num_heads=3,
            feedforward_channels=768),
        img_size=(256, 128),
        patch_size=16,
        # a view whose side is not a multiple of 16 (the 0.875x crops)
        # loses its last partial row / column, as a strided conv does
        patch_cfg=dict(padding=0),
        qkv_bias=True,
        drop_path_rate=0.,
        out_type='raw',
        init_cfg=[
            dict(
                type='Xavier', layer='Linear', distribution='uniform',
                bias=0.),
            dict(type='Constant', layer='LayerNorm', val=1., bias=0.),
        ]),
    csm_head=dict(type='CSMHead', in_dims=192, out_dims=65536),
    csr_decoder=dict(
        type='CSRDecoder',
        in_dims=192,
        num_patches=16 * 8,  # the anchor's grid
        patch_size=16,
        anchor_tokens='patches'),  # Eq. 2: cross-attention to F'_0
    css_decoder=dict(type='CSSDecoder', in_dims=192),
    csm_loss=dict(type='CSMLoss', out_dims=65536),
    csr_loss=dict(type='CSRLoss', norm_pix=True),  # --norm_pix_loss
    css_loss=dict(type='CSSLoss', mode='l2'),
    mid_layer=6,
    mask_ratio=0.75,
    pos_embed_resize='grid')
