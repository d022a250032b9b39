# LUP1M (a seeded 1M subset of LUPerson, see
# tools/dataset_converters/make_lup_subset.py) with DPAL's four views:
# 1 global 256x128 + 2 local 128x96 views of the single-person image, and a
# 256x256 copy-paste multi-person image on a person-free background.
# The paper does not list the augmentations: these are the authors' (their
# public training script; docs/dpal.md, "Views"), each view made by one
# fused ViewAugment (OpenCV on uint8; the same draws as the chain
# RandomResizedCrop -> RandomFlip -> ColorJitter -> RandomGrayscale ->
# GaussianBlur -> Solarize, at 3x+ the speed: docs/benchmark.md).
data_root = 'data/LUPerson/'
background_dir = 'data/backgrounds/'  # person-free images for copy-paste

# the "flip and colour jitter" block that every view shares
color_jitter = dict(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)
flip_and_color = dict(
    flip_prob=0.5, color_jitter=color_jitter, jitter_prob=0.8, gray_prob=0.2)
global_view = [
    dict(
        type='ViewAugment',
        size=(256, 128),  # (h, w)
        crop_scale=(0.8, 1.0),
        crop_ratio=(0.4, 0.6),
        interpolation='bicubic',
        **flip_and_color,
        blur_prob=1.0,
        blur_sigma=(0.1, 2.0)),
]
local_view = [
    dict(
        type='ViewAugment',
        size=(128, 96),
        crop_scale=(0.05, 0.8),
        crop_ratio=(0.4, 0.6),
        interpolation='bicubic',
        **flip_and_color,
        blur_prob=0.5,
        blur_sigma=(0.1, 2.0)),
]
background_view = [
    dict(
        type='ViewAugment',
        size=(256, 256),
        crop_scale=(0.2, 1.0),
        crop_ratio=(3 / 4, 4 / 3),
        interpolation='bicubic',
        **flip_and_color,
        blur_prob=0.1,
        blur_sigma=(0.1, 2.0),
        solarize_prob=0.2),
]
train_pipeline = [
    dict(type='LoadPersonImage'),
    dict(
        type='MultiView',
        num_views=[1, 2],
        transforms=[global_view, local_view]),
    dict(
        type='CopyPasteMultiPerson',
        background_dir=background_dir,
        size=(256, 256),
        person_size=(128, 96),
        background_pipeline=background_view,
        person_interpolation='nearest',  # the global view, as the authors'
        alpha=0.7),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=256,
    num_workers=16,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    # DefaultSampler that can skip the trained part of a resumed epoch
    sampler=dict(type='mmdpal.ResumableSampler', shuffle=True),
    # default_collate that also runs from other repos' tools (mmdpal::)
    collate_fn=dict(type='mmdpal.multi_view_collate'),
    dataset=dict(
        type='LUPersonDataset',
        data_root=data_root,
        ann_file='lup1m.txt',
        data_prefix=dict(img_path='images/'),
        max_bad_fraction=0.01,
        pipeline=train_pipeline))
