# ViTKD (Table 1 rival) in DPAL's runner: the student, the PATH-B teacher,
# the data, optimiser and schedule of configs/dpal/vit-ti_path-b_lup1m.py;
# only the objective and its projector change (docs/methods.md).
#   tools/dist_train.sh configs/rivals/vitkd_vit-ti_path-b_lup1m.py 8
_base_ = ['../dpal/vit-ti_path-b_lup1m.py']

model = dict(
    _delete_=True,
    type='ViTKDDistiller',
    data_preprocessor=_base_.model.data_preprocessor,
    backbone=_base_.model.backbone,
    teacher=_base_.model.teacher,
    student_dims=192,
    teacher_dims=768,
    mimic_layers=(0, 1),  # ViTKD: the first two blocks
    mask_ratio=0.5,  # lambda
    mimic_weight=3e-5,  # alpha (cls_KD's deit-s3_distill_deit-t_img.py)
    generation_weight=3e-6)  # beta
