# Teacher HAP-B (ViT-B/16 pretrained by HAP at 256x128; Table 4).
_base_ = './vit-ti_path-b_lup1m.py'

model = dict(
    teacher=dict(
        backbone=dict(img_size=(256, 128)),
        checkpoint='checkpoints/hap-b_mmdpal.pth'))
