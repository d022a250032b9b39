# Proteus (Table 1 rival) in DPAL's runner: the student, the PATH-B teacher,
# the data, optimiser and schedule of configs/dpal/vit-ti_path-b_lup1m.py;
# only the objective and its projector change (docs/methods.md).
#   tools/dist_train.sh configs/rivals/proteus_vit-ti_path-b_lup1m.py 8
_base_ = ['../dpal/vit-ti_path-b_lup1m.py']

model = dict(
    _delete_=True,
    type='ProteusDistiller',
    data_preprocessor=_base_.model.data_preprocessor,
    backbone=_base_.model.backbone,
    teacher=_base_.model.teacher,
    student_dims=192,
    teacher_dims=768,
    # Proteus-pytorch pretrain/run_pretrain.sh (DINOv2 teacher)
    mask_probability=0.5,
    mask_ratio=0.5,
    token_weight=1.0,
    feature_weight=1.0,
    patch_weight=1.0)
