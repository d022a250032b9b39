# Student Swin-Ti (Table 5 / Table 12). Its last stage is a stride-32 map
# (8x4 tokens for 256x128), whose mean stands for the class token. The teacher
# runs at the view's size and its tokens / mask / relation are interpolated to
# the student's grid.
_base_ = './vit-ti_path-b_lup1m.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.SwinTransformer',
        arch='tiny',
        img_size=(256, 128),
        out_indices=(3, ),
        # 256x128 gives an 8x4 last stage (4x3 for a local view): smaller
        # than the 7x7 window, so pad it instead of failing
        pad_small_map=True,
        drop_path_rate=0.1),
    teacher=dict(align='interpolate_tokens'),
    decoder=dict(in_dims=768, num_heads=8))
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            '.absolute_pos_embed': dict(decay_mult=0.0),
            '.relative_position_bias_table': dict(decay_mult=0.0),
        }))
