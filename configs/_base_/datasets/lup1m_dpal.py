# LUP1M (a seeded 1M subset of LUPerson, see
# tools/dataset_converters/make_lup_subset.py) with DPAL's four views:
# 1 global 256x128 + 2 local 128x96 views of the single-person image, and a
# 256x256 copy-paste multi-person image on a person-free background.
data_root = 'data/LUPerson/'
background_dir = 'data/backgrounds/'  # person-free images for copy-paste

global_view = [
    dict(
        type='RandomResizedCrop',
        scale=(256, 128),  # (h, w)
        crop_ratio_range=(0.8, 1.0),
        aspect_ratio_range=(0.4, 0.6),
        interpolation='bicubic',
        backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomApply',
        transforms=[
            dict(
                type='ColorJitter',
                brightness=0.4,
                contrast=0.4,
                saturation=0.2,
                hue=0.1)
        ],
        prob=0.8),
    dict(
        type='RandomGrayscale',
        prob=0.2,
        keep_channels=True,
        channel_weights=(0.114, 0.587, 0.2989)),
    dict(
        type='GaussianBlur',
        magnitude_range=(0.1, 2.0),
        magnitude_std='inf',
        prob=1.0),
]
local_view = [
    dict(
        type='RandomResizedCrop',
        scale=(128, 96),
        crop_ratio_range=(0.05, 0.8),
        aspect_ratio_range=(0.4, 0.6),
        interpolation='bicubic',
        backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='GaussianBlur',
        magnitude_range=(0.1, 2.0),
        magnitude_std='inf',
        prob=0.5),
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
        background_scale=(0.2, 1.0),
        alpha=0.7),
    dict(type='PackInputs', algorithm_keys=['person_boxes', 'person_masks']),
]
train_dataloader = dict(
    batch_size=256,
    num_workers=16,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='LUPersonDataset',
        data_root=data_root,
        ann_file='lup1m.txt',
        data_prefix=dict(img_path='images/'),
        max_bad_fraction=0.01,
        pipeline=train_pipeline))
