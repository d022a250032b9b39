# What every tiny mmpose config (and the tiny official CrowdDet one: the
# student, schedule, loaders) changes in its real one, as variables (no
# config key, so that it is a base next to the real config): a 32-dim,
# 4-block ViT with 16-pixel patches (student pretrained on 64x32 crops: a
# 4x2 grid), 64x48 inputs, batch 2, one epoch, no flip test. Data paths and
# the student checkpoint come from --cfg-options (tests/mmdpal_testing.py).
tiny_arch = dict(
    embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64)
# the official student's last block has twice the heads (6 -> 12 real)
tiny_official_layer_cfgs = [dict()] * 3 + [dict(num_heads=4)]
tiny_init_cfg = dict(pos_embed_grid=(4, 2))
tiny_head = dict(in_channels=32, deconv_out_channels=(16, 16))
tiny_param_scheduler = [
    dict(type='LinearLR', begin=0, end=2, start_factor=0.5, by_epoch=False),
]


def _pipelines(codec, use_udp):
    affine = dict(
        type='TopdownAffine', input_size=codec['input_size'], use_udp=use_udp)
    train = [
        dict(type='LoadImage'),
        dict(type='GetBBoxCenterScale'),
        dict(type='RandomFlip', direction='horizontal'), affine,
        dict(type='GenerateTarget', encoder=codec),
        dict(type='PackPoseInputs')
    ]
    val = [
        dict(type='LoadImage'),
        dict(type='GetBBoxCenterScale'), affine,
        dict(type='PackPoseInputs')
    ]
    return train, val


tiny_udp_codec = dict(
    type='UDPHeatmap', input_size=(48, 64), heatmap_size=(12, 16), sigma=2)
tiny_msra_codec = dict(
    type='MSRAHeatmap', input_size=(48, 64), heatmap_size=(12, 16), sigma=2)
tiny_udp_train_pipeline, tiny_udp_val_pipeline = _pipelines(
    tiny_udp_codec, True)
tiny_msra_train_pipeline, tiny_msra_val_pipeline = _pipelines(
    tiny_msra_codec, False)
del _pipelines

tiny_loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
tiny_train_cfg = dict(max_epochs=1, val_interval=100)
tiny_default_hooks = dict(logger=dict(interval=1))
tiny_visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
