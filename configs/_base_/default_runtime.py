# mmpretrain's runtime (logger, checkpoint, sampler seed, visualiser...), in the
# mmdpal scope, with mmdpal's training checks.
_base_ = 'mmpretrain::_base_/default_runtime.py'

default_scope = 'mmdpal'
custom_imports = dict(imports=['mmdpal'], allow_failed_imports=False)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
custom_hooks = [
    dict(type='FiniteLossHook'),  # NaN/inf -> stop, naming the loss term
    dict(type='BadImageLoggerHook'),  # undecodable images, counted
]
randomness = dict(seed=0, diff_rank_seed=True)
