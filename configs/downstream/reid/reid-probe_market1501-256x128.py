# The ReID probe during DPAL pretraining: every `val_interval` epochs the
# frozen student embeds Market-1501's query and gallery images (its class
# token; the mean patch feature for Swin) and mmdpal's ReIDMetric reports
# kNN mAP and CMC Rank-1/5/10 (reid/mAP, reid/R1, ...) in the log. No
# fine-tuning: it shows what pretraining itself learnt.
#
# Off by default. To use it, add this file to a pretraining config's bases,
#   _base_ = ['./vit-ti_path-b_lup1m.py',
#             '../downstream/reid/reid-probe_market1501-256x128.py']
# and set val_dataloader.dataset.data_root (here or with --cfg-options) and
# how often it runs (train_cfg.val_interval, in epochs; default 1). On a
# student checkpoint after pretraining:
#   python tools/analysis_tools/reid_probe.py configs/dpal/vit-ti_path-b_lup1m.py \
#       checkpoints/dpal_vit-ti_student.pth --data-root data/market1501/Market-1501-v15.09.15
val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    # one (B, 3, H, W) tensor per batch, as the DPAL data preprocessor wants
    collate_fn=dict(type='mmdpal.multi_view_collate'),
    dataset=dict(
        type='Market1501',
        data_root='data/market1501/Market-1501-v15.09.15/',
        split='test',
        pipeline=[
            dict(type='LoadImageFromFile'),
            # the student's pretraining size and interpolation
            dict(
                type='Resize',
                scale=(128, 256),
                keep_ratio=False,
                interpolation='bicubic',
                backend='pillow'),
            dict(
                type='PackInputs',
                meta_keys=('img_path', 'camera_id', 'is_query')),
        ]))
val_evaluator = dict(type='ReIDMetric', ranks=(1, 5, 10))
val_cfg = dict(type='ReIDProbeLoop')
