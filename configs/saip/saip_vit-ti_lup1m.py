# SAIP, the ViT-Ti run of its README on LUP1M: 256x128, crops 128x64, 300
# epochs, 8 GPUs x 64 images with 4 accumulated steps (2048 per update),
# base lr 2.5e-4 per 256 images (-> 2e-3), weight decay 0.05 (none on 1-D
# parameters), 10 warm-up epochs then cosine to 0. Paper mode (Eq. 1-3);
# saip_vit-ti_lup1m_official.py computes what their code computes.
#   tools/dist_train.sh configs/saip/saip_vit-ti_lup1m.py 8
_base_ = [
    '../_base_/models/saip_vit-ti.py',
    '../_base_/datasets/lup1m_saip.py',
    '../_base_/default_runtime.py',
]
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='bfloat16',
    accumulative_counts=4,
    optimizer=dict(type='AdamW', lr=2.5e-4, weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0))
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
        T_max=290,
        eta_min=0.0,
        by_epoch=True,
        begin=10,
        end=300,
        convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=300)
# lr 2.5e-4 per 256 images of one update; an update is 4 batches, so per
# 64 images of one batch: 8 GPUs x 64 -> 2.5e-4 * 512 / 64 = 2e-3
auto_scale_lr = dict(base_batch_size=64, enable=True)
