# The Table 6 config shrunk for CPU tests: tiny student / teacher (patch 8),
# views 64x32 (global), 32x24 (local), 64x64 (multi-person), batch 4, 4 epochs.
# The data root and teacher checkpoint come from --cfg-options.
_base_ = '../../configs/dpal/vit-ti_path-b_lup1m.py'

model = dict(
    backbone=dict(
        arch=dict(
            embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
        img_size=(64, 32),
        patch_size=8),
    teacher=dict(
        backbone=dict(
            arch=dict(
                _delete_=True,
                embed_dims=48,
                num_layers=2,
                num_heads=3,
                feedforward_channels=96),
            img_size=(64, 32),
            patch_size=8),
        checkpoint='set-by-the-test.pth'),
    decoder=dict(in_dims=32, out_dims=48, num_heads=2))

# the Table 6 views and copy-paste at 1/4 size (crops and the global view's
# flip only, no colour change or blur: fast, and the test's loss curve is
# less noisy)
no_color = dict(color_jitter=None, gray_prob=0., blur_prob=0.)
global_view = [dict(_base_.global_view[0], size=(64, 32), **no_color)]
local_view = [
    dict(_base_.local_view[0], size=(32, 24), flip_prob=0., **no_color)
]
background_view = [
    dict(
        _base_.background_view[0],
        size=(64, 64),
        flip_prob=0.,
        solarize_prob=0.,
        **no_color)
]
load, multi_view, copy_paste, pack = _base_.train_pipeline
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    pin_memory=False,
    dataset=dict(
        ann_file='',
        data_prefix=dict(img_path='images/'),
        pipeline=[
            load,
            dict(multi_view, transforms=[global_view, local_view]),
            dict(
                copy_paste,
                background_dir='set-by-the-test',
                size=(64, 64),
                person_size=(32, 24),
                background_pipeline=background_view),
            pack,
        ]))
optim_wrapper = dict(  # fp32 on the CPU; the paramwise rules of Table 6
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
    paramwise_cfg={{_base_.optim_wrapper.paramwise_cfg}})
auto_scale_lr = dict(enable=False)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4),
]
train_cfg = dict(max_epochs=4)
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=10))
