# The PA-100K test chain (tiny_pa100k.py: a 32-dim, 4-block ViT, batch 4,
# two iterations) on PETA-zs: the datasets and the 35-way head of
# mlc_dpal-vit-ti_1xb64-25e_peta-zs-256x128.py. Data paths and the student
# checkpoint come from --cfg-options.
_base_ = './tiny_pa100k.py'

model = dict(head=dict(num_classes=35))

train_dataloader = dict(
    dataset=dict(
        type='mmdpal.PETA', ann_file='dataset_zs_run0.pkl', split='trainval'))
val_dataloader = dict(
    dataset=dict(
        type='mmdpal.PETA', ann_file='dataset_zs_run0.pkl', split='test'))
test_dataloader = val_dataloader
