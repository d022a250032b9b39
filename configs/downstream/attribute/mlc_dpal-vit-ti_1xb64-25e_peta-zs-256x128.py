# DPAL ViT-Ti/16 student on PETA-zs pedestrian attribute recognition (paper
# Table 1's "PETA-zs": the zero-shot split of Jia et al., "Rethinking of
# Pedestrian Attribute Recognition", 2021, whose training and test persons
# are disjoint). The PA-100K recipe (Table 7: 256x128, lr 1e-4, 25 epochs,
# the same model, pipelines, metric and schedule) with mmdpal's PETA reader:
# the 35 evaluated attributes of the 105, in the group order of that code.
# Training uses trainval, testing test (as that code does).
#
#   data/PETA/dataset_zs_run0.pkl   (Jia et al.'s zero-shot split file)
#   data/PETA/images/00001.png ... 19000.png
#
#   python tools/model_converters/extract_student.py \
#       work_dirs/vit-ti_path-b_lup1m/epoch_100.pth \
#       checkpoints/dpal_vit-ti_student.pth
#   python tools/train.py configs/downstream/attribute/mlc_dpal-vit-ti_1xb64-25e_peta-zs-256x128.py
#   python tools/test.py configs/downstream/attribute/mlc_dpal-vit-ti_1xb64-25e_peta-zs-256x128.py \
#       work_dirs/mlc_dpal-vit-ti_1xb64-25e_peta-zs-256x128/epoch_25.pth
#
# Another student: --cfg-options model.init_cfg.checkpoint=PATH. PETA's
# original random partitions instead of PETA-zs: ann_file='PETA.mat' and
# partition=0..4 in the datasets (the same 35 attributes).
_base_ = './mlc_dpal-vit-ti_1xb64-25e_pa100k-256x128.py'

model = dict(head=dict(num_classes=35))

peta_zs = dict(
    type='mmdpal.PETA', data_root='data/PETA/', ann_file='dataset_zs_run0.pkl')
train_dataloader = dict(dataset=dict(**peta_zs, split='trainval'))
val_dataloader = dict(dataset=dict(**peta_zs, split='test'))
test_dataloader = val_dataloader
