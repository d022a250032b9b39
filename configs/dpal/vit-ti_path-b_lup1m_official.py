# DPAL with the choices of the authors' public code where it differs from the
# paper (see docs/dpal.md): PCA shape mask, token-similarity relation target,
# routing supervision (0.1 for 20 epochs, then 0.01), an L2 penalty 0.025 on
# the generated experts scaled by 1/256, AdamW betas (0.9, 0.95), 200 epochs.
_base_ = './vit-ti_path-b_lup1m.py'

model = dict(
    teacher=dict(shape_mask='pca', relation='similarity'),
    decoder=dict(
        weight_scale=1 / 256, router_loss_weight=0.1, expert_l2_weight=0.025))
custom_hooks = [
    dict(type='FiniteLossHook'),
    dict(type='BadImageLoggerHook'),
    dict(type='RouterLossScheduleHook', milestones=[(0, 0.1), (20, 0.01)]),
]
optim_wrapper = dict(optimizer=dict(betas=(0.9, 0.95)))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=10,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=190,
        eta_min=0.0,
        by_epoch=True,
        begin=10,
        end=200,
        convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=200)
