# Student ViT-S/16 (384 dims, 12 blocks, 6 heads; Table 5 / Table 12).
_base_ = './vit-ti_path-b_lup1m.py'

model = dict(
    backbone=dict(arch='deit-small'), decoder=dict(in_dims=384, num_heads=6))
