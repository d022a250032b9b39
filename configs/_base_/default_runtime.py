# mmpretrain's runtime (logger, checkpoint, sampler seed, visualiser...), in the
# mmdpal scope, with mmdpal's training checks.
_base_ = 'mmpretrain::_base_/default_runtime.py'

default_scope = 'mmdpal'
custom_imports = dict(imports=['mmdpal'], allow_failed_imports=False)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3),
    # every random draw from (seed, epoch, iteration, rank, sample): a run
    # resumed from a checkpoint logs the losses of an uninterrupted one
    randomness=dict(type='ResumableRandomnessHook'))
custom_hooks = [
    dict(type='FiniteLossHook'),  # NaN/inf on any rank -> all stop, named
    dict(type='BadImageLoggerHook'),  # undecodable images, over all ranks
]
randomness = dict(seed=0, diff_rank_seed=True)
env_cfg = dict(
    # NCCL on GPUs (tools/train.py switches to gloo when CUDA is absent);
    # timeout: seconds a rank waits in a collective before failing
    dist_cfg=dict(backend='nccl', timeout=1800))
# DDP: every parameter of the DPAL configs takes part in every loss
# (tests/test_engine/test_ddp_unused_params.py); a config that leaves some
# out sets find_unused_parameters=True itself
find_unused_parameters = False
