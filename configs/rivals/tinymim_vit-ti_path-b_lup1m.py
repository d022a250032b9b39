# TinyMIM (Table 1 rival) in DPAL's runner: the student, the PATH-B teacher,
# the data, optimiser and schedule of configs/dpal/vit-ti_path-b_lup1m.py;
# only the objective changes (docs/methods.md), and what it needs:
# * the student's last block has the teacher's 12 heads (TinyMIM's
#   last_heads=12 of its ViT-T; relations are compared head to head);
# * the student stops at that block's attention, as TinyMIM's: its
#   projection, FFN and the final norm get no gradient.
#   tools/dist_train.sh configs/rivals/tinymim_vit-ti_path-b_lup1m.py 8
_base_ = ['../dpal/vit-ti_path-b_lup1m.py']

model = dict(
    _delete_=True,
    type='TinyMIMDistiller',
    data_preprocessor=_base_.model.data_preprocessor,
    backbone=dict(
        _base_.model.backbone,
        layer_cfgs=[dict()] * 11 + [dict(num_heads=12)]),
    teacher=_base_.model.teacher,
    qk_weight=1.0,
    vv_weight=1.0)
find_unused_parameters = True
