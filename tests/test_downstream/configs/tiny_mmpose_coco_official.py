# The authors' COCO protocol, shrunk for CPU tests with tiny_mmpose_parts.py:
# the class token and the 4x2 position grid are kept, 8 -> 12 positions in
# every forward (1-D).
_base_ = [
    '../../../configs/downstream/mmpose/'
    'td-hm_dpal-vit-ti_8xb128-210e_coco-256x192_official.py',
    './tiny_mmpose_parts.py'
]

codec = _base_.tiny_udp_codec
model = dict(
    init_cfg=_base_.tiny_init_cfg,
    backbone=dict(
        arch=_base_.tiny_arch,
        img_size=(64, 32),
        layer_cfgs=_base_.tiny_official_layer_cfgs),
    head=dict(_base_.tiny_head, decoder=codec),
    test_cfg=dict(flip_test=False))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=4))
param_scheduler = _base_.tiny_param_scheduler

train_pipeline = _base_.tiny_udp_train_pipeline
val_pipeline = _base_.tiny_udp_val_pipeline
train_dataloader = dict(
    _base_.tiny_loader, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    _base_.tiny_loader, dataset=dict(bbox_file=None, pipeline=val_pipeline))
test_dataloader = val_dataloader

train_cfg = _base_.tiny_train_cfg
default_hooks = _base_.tiny_default_hooks
visualizer = _base_.tiny_visualizer
