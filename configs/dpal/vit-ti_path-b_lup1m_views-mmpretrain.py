# The Table 6 config with its views made by the chain of mmpretrain
# transforms (PIL ops, one transform per augmentation) instead of the fused
# ViewAugment: the same augmentations, parameter ranges and probabilities.
# The reference path for the data pipeline, 3-6x slower per view
# (docs/benchmark.md):
#   python tools/analysis_tools/benchmark_pretrain.py \
#       configs/dpal/vit-ti_path-b_lup1m_views-mmpretrain.py --skip-train
_base_ = './vit-ti_path-b_lup1m.py'


def chain(size, crop_scale, crop_ratio, blur_prob, solarize_prob=0.):
    """RandomResizedCrop -> flip -> colour jitter -> grayscale -> blur
    (-> solarise), as the authors' torchvision pipeline."""
    return [
        dict(
            type='RandomResizedCrop',
            scale=size,
            crop_ratio_range=crop_scale,
            aspect_ratio_range=crop_ratio,
            interpolation='bicubic',
            backend='pillow'),
        dict(type='RandomFlip', prob=0.5),
        dict(
            type='RandomApply',
            transforms=[dict(type='ColorJitter', **_base_.color_jitter)],
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
            prob=blur_prob),
    ] + ([dict(type='Solarize', thr=128, prob=solarize_prob)]
         if solarize_prob else [])


global_view = chain((256, 128), (0.8, 1.0), (0.4, 0.6), 1.0)
local_view = chain((128, 96), (0.05, 0.8), (0.4, 0.6), 0.5)
background_view = chain((256, 256), (0.2, 1.0), (3 / 4, 4 / 3), 0.1, 0.2)
load, multi_view, copy_paste, pack = _base_.train_pipeline
train_dataloader = dict(
    dataset=dict(pipeline=[
        load,
        dict(multi_view, transforms=[global_view, local_view]),
        dict(copy_paste, background_pipeline=background_view),
        pack,
    ]))
