# LUP1M with SAIP's views (their README run: 256x128 globals, 128x64 crops,
# global crop scale 0.8-1.0, local 0.05-0.8): two global views (the first is
# the anchor I_0), seven local crops, and a 224x224 multi-person image with
# the 7th crop and the anchor (shrunk to 128x64, nearest: the "region")
# pasted in, plus the box mask of each pasted person (paste_masks).
# The views are DPAL's ViewAugment with SAIP's probabilities (DINO's): the
# first global view always blurred, the second blurred with p 0.1 and
# solarised with p 0.2, the crops blurred with p 0.5.
_base_ = './lup1m_dpal.py'

global_view_1 = [dict(_base_.global_view[0], size=(256, 128))]
global_view_2 = [
    dict(
        _base_.global_view[0],
        size=(256, 128),
        blur_prob=0.1,
        solarize_prob=0.2)
]
local_view = [dict(_base_.local_view[0], size=(128, 64))]
background_view = [dict(_base_.background_view[0], size=(224, 224))]
train_pipeline = [
    dict(type='LoadPersonImage'),
    dict(
        type='MultiView',
        num_views=[1, 1, 7],
        transforms=[global_view_1, global_view_2, local_view]),
    dict(
        type='CopyPasteMultiPerson',
        background_dir=_base_.background_dir,
        size=(224, 224),
        person_size=(128, 64),
        background_pipeline=background_view,
        person_interpolation='nearest',
        alpha=0.7,
        box_masks=True),
    dict(type='PackInputs', algorithm_keys=['paste_masks']),
]
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=train_pipeline))
