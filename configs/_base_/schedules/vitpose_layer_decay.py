# ViTPose's optimizer (mmpose's td-hm_ViTPose-small_8xb64-210e_coco-256x192.py),
# as a variable for configs whose base is not a ViTPose config:
#   model/optim_wrapper = _base_.vitpose_optim_wrapper
# The layer-decay constructor itself keeps biases, norms and pos_embed out of
# weight decay.
vitpose_optim_wrapper = dict(
    optimizer=dict(
        type='AdamW', lr=5e-4, betas=(0.9, 0.999), weight_decay=0.1),
    paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.8),
    constructor='LayerDecayOptimWrapperConstructor',
    clip_grad=dict(max_norm=1., norm_type=2),
)
