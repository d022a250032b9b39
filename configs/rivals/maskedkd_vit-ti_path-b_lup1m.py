# MaskedKD (Table 1 rival), feature form, in DPAL's runner: the student, the
# PATH-B teacher, the data, optimiser and schedule of
# configs/dpal/vit-ti_path-b_lup1m.py; only the objective and its projector
# change (docs/methods.md).
#   tools/dist_train.sh configs/rivals/maskedkd_vit-ti_path-b_lup1m.py 8
_base_ = ['../dpal/vit-ti_path-b_lup1m.py']

model = dict(
    _delete_=True,
    type='MaskedKDDistiller',
    data_preprocessor=_base_.model.data_preprocessor,
    backbone=_base_.model.backbone,
    teacher=_base_.model.teacher,
    student_dims=192,
    teacher_dims=768,
    keep_ratio=0.5,  # MaskedKD's README: --len_num_keep 98 of 196 patches
    loss_weight=1.0)
