# Teacher PATH-L (ViT-L/16, 1024 dims; Table 13).
_base_ = './vit-ti_path-b_lup1m.py'

model = dict(
    teacher=dict(
        backbone=dict(arch='l'), checkpoint='checkpoints/path-l_mmdpal.pth'),
    decoder=dict(out_dims=1024))
