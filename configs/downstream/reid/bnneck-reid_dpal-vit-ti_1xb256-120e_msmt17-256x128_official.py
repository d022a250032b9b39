# The authors' MSMT17 protocol (I2I-ReID: train.sh with
# configs/msmt17/dpal_vit_tiny.yml): the Market-1501 one
# (bnneck-reid_dpal-vit-ti_1xb64-120e_market1501-256x128_official.py) on
# MSMT17 with batches of 256 (64 identities x 4 images), 1,041 identities:
# 32,621 / 256 = 127 iterations per epoch.
#
#   python tools/train.py configs/downstream/reid/bnneck-reid_dpal-vit-ti_1xb256-120e_msmt17-256x128_official.py
_base_ = [
    './bnneck-reid_dpal-vit-ti_1xb64-120e_market1501-256x128_official.py'
]

data_root = 'data/MSMT17_V1/'
model = dict(head=dict(num_classes=1041))
train_dataloader = dict(
    dataset=dict(
        type='mmdpal.MSMT17',
        data_root=data_root,
        triplet_sampler=dict(num_ids=64, ins_per_id=4)))
val_dataloader = dict(dataset=dict(type='mmdpal.MSMT17', data_root=data_root))
test_dataloader = val_dataloader

epoch_iters = 127
param_scheduler = [dict(_base_.param_scheduler[0], epoch_iters=epoch_iters)]
train_cfg = dict(max_iters=120 * epoch_iters, val_interval=10 * epoch_iters)
default_hooks = dict(checkpoint=dict(interval=10 * epoch_iters))
