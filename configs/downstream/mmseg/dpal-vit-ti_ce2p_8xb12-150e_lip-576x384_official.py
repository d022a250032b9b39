# The authors' LIP protocol (Human-centric-Vision-Perception, HumanParsing:
# train_eval.sh, a SCHP trainer) on mmseg, with the official student (12
# heads in the last block): SCHP's CE2P head on the ViT's blocks 4, 8, 12,
# CE + Lovasz + edge losses, self-correction cycles from epoch 120, SCHP's
# affine crops, batch 96, AdamW 7e-4 without weight decay, and the
# multi-scale + flip test.
# docs/downstream.md lists each difference from
# dpal-vit-ti_mln_upernet_8xb2-150e_lip-576x384.py with its reason.
#
#   tools/dist_train.sh configs/downstream/mmseg/dpal-vit-ti_ce2p_8xb12-150e_lip-576x384_official.py 8
#   tools/dist_test.sh configs/downstream/mmseg/dpal-vit-ti_ce2p_8xb12-150e_lip-576x384_official.py \
#       work_dirs/dpal-vit-ti_ce2p_8xb12-150e_lip-576x384_official/epoch_150.pth 8 --tta
_base_ = './dpal-vit-ti_mln_upernet_8xb2-150e_lip-576x384.py'

# Their ViT (HumanParsing/networks/vision_transformer.py VisionTransformerHP):
# - the class token stays in the sequence; no drop path (their default);
# - after blocks 4, 8, 12 a new LayerNorm whose output is the tapped map
#   *and* the stream the next block takes (tap_norm='replace'); the
#   student's final norm is unused (final_norm=False, ln1.* left over) and
#   the new norms start at weight 1, bias 0 (new_keys);
# - built at 224x224 (train.py passes image_size, the model reads img_size):
#   a 14x14 position grid; the pretrained 16x8 = 128 positions are resampled
#   at loading as one flat sequence (bilinear) to 196, and every forward
#   resizes that 14x14 grid to the batch's (36x24 at 576x384) with DINO's
#   scale factors (bicubic, scale_factor=(36.1 / 14, 24.1 / 14)).
model = dict(
    init_cfg=dict(
        unused_keys=['ln1.weight', 'ln1.bias'],
        new_keys=['tap_norms.'],
        pos_embed_resize='sequence_1d_bilinear'),
    backbone=dict(
        type='mmdpal.ResampledPosViT',
        pos_embed_resize='dino_scale_factor',
        tap_norm='replace',
        img_size=(224, 224),
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

# Their test input (LIPDataValSet): every image, portrait or landscape,
# warped into 576 (h) x 384 (w), centred, aspect kept, border 0; CE2PHead
# maps the logits back onto the image as their transform_parsing does (the
# crop's logits resized to 576x384, then nearest-sampled at each original
# pixel), where the label is compared.
fit_meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                 'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                 'reduce_zero_label', 'fit_matrix', 'fit_shape')
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdpal.SCHPAffineFit', crop_size=_base_.crop_size),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs', meta_keys=fit_meta_keys)
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# tools/test.py ... --tta: scales 0.5 ... 1.5 of the 576x384 fitted crop
# (torch's bilinear resize with align_corners=True, as theirs), each with its
# flip; raw logits averaged, left / right swapped
tta_model = dict(type='mmdpal.ParsingTTAModel', flip_pairs=_base_.flip_pairs)
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='mmdpal.SCHPAffineFit', crop_size=_base_.crop_size)],
            [
                dict(type='mmdpal.AlignCornersRescale', scale_factor=r)
                for r in (0.5, 0.75, 1.0, 1.25, 1.5)
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ], [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs', meta_keys=fit_meta_keys)]
        ])
]
