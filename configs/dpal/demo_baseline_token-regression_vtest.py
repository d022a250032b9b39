# The demo's simpler distillation baseline (demo/README.md): everything of
# demo_vit-ti_dinov2-s_vtest.py (student, teacher, views, copy-paste data,
# iterations, optimiser, schedule) but none of DPAL's patterns:
# * no D-PaDe: one linear projection C_s -> C_t ("w/o decoder" of Table 11);
# * the class tokens of the M views regressed on the teacher's (Eq. 4's L2);
# * every patch token regressed on the teacher's (Eq. 5 without M_shape:
#   the teacher's shape_mask='none' weighs every patch 1);
# * no relation pattern (the multi-person view is made but not used).
# So the comparison with the DPAL run asks what the decoder and the three
# patterns add over plain token regression, at the same budget.
_base_ = ['./demo_vit-ti_dinov2-s_vtest.py']

model = dict(
    teacher=dict(shape_mask='none'),
    decoder=dict(
        _delete_=True, type='LinearDecoder', in_dims=192, out_dims=384),
    relation_loss=None)
work_dir = 'work_dirs/demo_baseline_token-regression_vtest'
