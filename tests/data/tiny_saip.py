# The SAIP configs shrunk for CPU tests: a 32-dim, 4-block ViT (patch 8,
# anchor 64x32, crops 32x16, multi-person image 56x56), block 1 as CSR/CSS's
# middle block, small heads and decoders. Used with either SAIP config as
# its base: Config.fromfile(cfg).merge_from_dict(tiny_saip.model)
model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=32,
            num_layers=4,
            num_heads=2,
            feedforward_channels=64),
        img_size=(64, 32),
        patch_size=8),
    csm_head=dict(in_dims=32, out_dims=64, hidden_dims=48, bottleneck_dims=16),
    csr_decoder=dict(
        in_dims=32,
        num_patches=8 * 4,
        patch_size=8,
        dims=32,
        depth=2,
        num_heads=2),
    css_decoder=dict(in_dims=32, dims=32, num_heads=2),
    csm_loss=dict(out_dims=64),
    mid_layer=1)
