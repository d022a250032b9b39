# LIP (Look Into Person) single-person human parsing, 20 classes (0 is the
# background; mmseg's LIPDataset: images *.jpg, label masks *.png holding the
# class index per pixel). Crops of 576x384 (h x w), as in the paper (Table 7).
#
# Layout (the official TrainVal_images / TrainVal_parsing_annotations zips,
# moved or linked into mmseg's usual folders):
#   data/LIP/images/training/*.jpg        <- TrainVal_images/train_images
#   data/LIP/annotations/training/*.png   <- .../train_segmentations
#   data/LIP/images/validation/*.jpg      <- TrainVal_images/val_images
#   data/LIP/annotations/validation/*.png <- .../val_segmentations
dataset_type = 'LIPDataset'
data_root = 'data/LIP/'
crop_size = (576, 384)  # (h, w)
# left / right classes swap when the image is flipped
flip_pairs = [(14, 15), (16, 17), (18, 19)]  # arm, leg, shoe

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(384, 576),  # (w, h)
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5, swap_seg_labels=flip_pairs),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(384, 576), keep_ratio=True),
    # load the label after Resize: the metric compares at the original size
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]

train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# mIoU, plus aAcc and mAcc (mean pixel accuracy of the classes)
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
