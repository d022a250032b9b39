# DPAL as the authors' public training script computes it, where it differs
# from the paper (docs/dpal.md has one row per difference, its key and its
# measured effect): the authors' decoder (LossMOEDecoder: heads 16/12/16/16,
# router on the attended tokens without bias, their norms and init, zero
# pattern queries, 1/256 scale), routing supervision (0.1 for 20 epochs, then
# 0.01) and expert L2 0.025 over the 5 decoder calls of a step, PCA shape
# mask (one PCA over the whole batch, their sign), token-similarity relation
# with the class token, 12 heads in the student's last block, their 1-D
# student / DINO teacher position resizes, AdamW betas (0.9, 0.95) with
# decay on position embedding and class token, fp16 AMP, an EMA of student +
# decoder (momentum indexed by the iteration within the epoch, as theirs),
# 200 epochs.
#   tools/dist_train.sh configs/dpal/vit-ti_path-b_lup1m_official.py 8
# Then: tools/model_converters/extract_student.py [--ema] CKPT OUT
_base_ = './vit-ti_path-b_lup1m.py'

model = dict(
    backbone=dict(layer_cfgs=[dict()] * 11 + [dict(num_heads=12)]),
    student_pos_embed_resize='sequence_1d',
    relation_tokens='all',
    teacher=dict(
        shape_mask='pca_batch',  # one PCA over the batch, as theirs
        relation='similarity',
        pos_embed_resize='dino_scale_factor'),
    decoder=dict(
        num_heads=dict(
            _delete_=True,  # one int in the paper mode
            tokens=16,
            router=12,
            generator_sa=16,
            generator_ca=16),
        router_keys='attended',
        router_bias=False,
        generator_norms='pre_ca_ffn',
        init_mode='authors',
        weight_scale=1 / 256,
        router_loss_weight=0.1,
        expert_l2_weight=0.025))
custom_hooks = [
    dict(type='FiniteLossHook'),
    dict(type='BadImageLoggerHook'),
    dict(type='RouterLossScheduleHook', milestones=[(0, 0.1), (20, 0.01)]),
    # ema = m * ema + (1 - m) * param, m on a cosine 0.996 -> 1 over all
    # iterations, indexed by the iteration within the epoch as their
    # script does (so m stays near 0.996)
    dict(
        type='EMAHook',
        ema_type='StudentCosineEMA',
        momentum=0.004,
        end_momentum=0.,
        momentum_index='iter_in_epoch'),
]
optim_wrapper = dict(
    dtype='float16',  # torch.cuda.amp.autocast + GradScaler, as theirs
    loss_scale='dynamic',
    optimizer=dict(betas=(0.9, 0.95)),
    # timm's add_weight_decay: no decay on biases and 1-D parameters only
    paramwise_cfg=dict(
        _delete_=True,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0))
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
