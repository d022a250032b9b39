# Teacher Sapiens-L (ViT-L/16 pretrained at 1024x768; Table 4). Its
# position grid is 64x48 and is resized to the view's grid at run time.
_base_ = './vit-ti_path-b_lup1m.py'

model = dict(
    teacher=dict(
        backbone=dict(arch='l', img_size=(1024, 768)),
        checkpoint='checkpoints/sapiens-l_mmdpal.pth'),
    decoder=dict(out_dims=1024))
