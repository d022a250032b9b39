# The authors' PETA-zs protocol (attribute_recognition:
# configs/vit_tiny_peta_zs.yaml): the PA-100K one
# (mlc_dpal-vit-ti_1xb64-30e_pa100k-256x128_official.py) on the 35
# attributes of PETA-zs, 22 epochs.
#
#   python tools/train.py configs/downstream/attribute/mlc_dpal-vit-ti_1xb64-22e_peta-zs-256x128_official.py
_base_ = './mlc_dpal-vit-ti_1xb64-30e_pa100k-256x128_official.py'

num_attributes = 35
model = dict(
    head=dict(
        num_classes=num_attributes, loss=dict(num_classes=num_attributes)))

peta_zs = dict(
    type='mmdpal.PETA', data_root='data/PETA/', ann_file='dataset_zs_run0.pkl')
train_dataloader = dict(dataset=dict(**peta_zs, split='trainval'))
val_dataloader = dict(dataset=dict(**peta_zs, split='test'))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=22)
