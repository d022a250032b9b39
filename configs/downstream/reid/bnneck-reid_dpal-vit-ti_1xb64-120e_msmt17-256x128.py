# DPAL ViT-Ti/16 student on MSMT17 image-to-image person ReID: the Market-1501
# recipe (see its config for the model and why mmdet's ReID parts) on the
# released MSMT17_V1 folder, 1,041 training identities (list_train.txt +
# list_val.txt, 32,621 images: 510 batches of 64 per epoch).
#
#   python tools/train.py configs/downstream/reid/bnneck-reid_dpal-vit-ti_1xb64-120e_msmt17-256x128.py
#   python tools/test.py configs/downstream/reid/bnneck-reid_dpal-vit-ti_1xb64-120e_msmt17-256x128.py \
#       work_dirs/bnneck-reid_dpal-vit-ti_1xb64-120e_msmt17-256x128/iter_61200.pth
_base_ = './bnneck-reid_dpal-vit-ti_1xb64-120e_market1501-256x128.py'

data_root = 'data/MSMT17_V1/'
model = dict(head=dict(num_classes=1041))
train_dataloader = dict(
    dataset=dict(type='mmdpal.MSMT17', data_root=data_root))
val_dataloader = dict(dataset=dict(type='mmdpal.MSMT17', data_root=data_root))
test_dataloader = val_dataloader

epoch_iters = 510
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=False,
        begin=0,
        end=20 * epoch_iters),
    dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=20 * epoch_iters,
        end=120 * epoch_iters,
        eta_min=1.6e-6),
]
train_cfg = dict(max_iters=120 * epoch_iters, val_interval=10 * epoch_iters)
default_hooks = dict(checkpoint=dict(interval=10 * epoch_iters))
