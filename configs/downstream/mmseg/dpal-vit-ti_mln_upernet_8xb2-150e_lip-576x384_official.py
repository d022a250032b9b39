# The authors' LIP protocol (Human-centric-Vision-Perception, HumanParsing:
# train_eval.sh, a SCHP trainer) on mmseg, with the official student (12
# heads in the last block): SCHP's CE2P head on the ViT's blocks 4, 8, 12,
# CE + Lovasz + edge losses, self-correction cycles from epoch 120, SCHP's
# affine crops, batch 96, AdamW 7e-4 without weight decay, and the
# multi-scale + flip test.
# docs/downstream.md lists each difference from
# dpal-vit-ti_mln_upernet_8xb2-150e_lip-576x384.py with its reason.
#
#   tools/dist_train.sh configs/downstream/mmseg/dpal-vit-ti_mln_upernet_8xb2-150e_lip-576x384_official.py 8
#   tools/dist_test.sh configs/downstream/mmseg/dpal-vit-ti_mln_upernet_8xb2-150e_lip-576x384_official.py \
#       work_dirs/dpal-vit-ti_mln_upernet_8xb2-150e_lip-576x384_official/epoch_150.pth 8 --tta
_base_ = './dpal-vit-ti_mln_upernet_8xb2-150e_lip-576x384.py'

# The class token stays in the sequence; blocks 4, 8, 12 feed the head
# without the student's final norm (the head norms each with a new
# LayerNorm); no drop path (their ViT's default).
model = dict(
    init_cfg=dict(unused_keys=['ln1.weight', 'ln1.bias']),
    backbone=dict(
        layer_cfgs=_base_.official_layer_cfgs,
        with_cls_token=True,
        out_indices=(3, 7, 11),
        final_norm=False,
        drop_path_rate=0.0),
    neck=None,
    decode_head=dict(
        _delete_=True,
        type='mmdpal.CE2PHead',
        in_channels=192,
        num_classes=20,
        norm_cfg=dict(type='SyncBN'),
        loss_decode=dict(type='mmdpal.CE2PLoss', num_classes=20)),
    auxiliary_head=None)

# SCHP's crop: the whole image warped onto 576x384, scale x [0.75, 1.25],
# rotation N(0, 30) on 60% of the images, flip with left / right swapped, no
# colour change; 8 x 12 = 96 images per step (theirs: 4 GPUs x 24)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='mmdpal.SCHPAffineCrop', crop_size=_base_.crop_size),
    dict(type='RandomFlip', prob=0.5, swap_seg_labels=_base_.flip_pairs),
    dict(type='PackSegInputs')
]
train_dataloader = dict(batch_size=12, dataset=dict(pipeline=train_pipeline))

# AdamW 7e-4, no weight decay; per epoch: linear warm-up from lr / 500 for
# 30 epochs, cosine down to lr / 500 at epoch 120, then 10-epoch cosine
# cycles from lr / 2 (SGDRScheduler, --lr_divider 500 --cyclelr_divider 2)
lr = 7e-4
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, weight_decay=0.))
param_scheduler = [
    # end 31: mmengine's LinearLR reaches lr at its last step + 1
    dict(
        type='LinearLR', start_factor=1 / 500, by_epoch=True, begin=0, end=31),
    dict(
        type='CosineAnnealingLR',
        T_max=90,
        eta_min=lr / 500,
        by_epoch=True,
        begin=30,
        end=120),
    dict(
        type='CosineRestartLR',
        periods=[10, 10, 10],
        restart_weights=[0.5, 0.5, 0.5],
        eta_min=lr / 500,
        by_epoch=True,
        begin=120,
        end=150),
]
custom_hooks = [
    dict(type='mmdpal.SelfCorrectionHook', start_epoch=120, cycle_epochs=10)
]

# tools/test.py ... --tta: scales 0.5 ... 1.5 of the 576x384 test size,
# each with its flip; raw logits averaged, left / right swapped
tta_model = dict(type='mmdpal.ParsingTTAModel', flip_pairs=_base_.flip_pairs)
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(384, 576), keep_ratio=True)],
            [
                dict(type='Resize', scale_factor=r, keep_ratio=True)
                for r in (0.5, 0.75, 1.0, 1.25, 1.5)
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ], [dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]
        ])
]
