# DPAL, Table 6 of the paper: ViT-Ti/16 student distilled from PATH-B on LUP1M,
# 100 epochs, 8 GPUs x 256 images, AMP (bf16).
#   tools/dist_train.sh configs/dpal/vit-ti_path-b_lup1m.py 8
# Then: tools/model_converters/extract_student.py work_dirs/.../epoch_100.pth
_base_ = [
    '../_base_/models/dpal_vit-ti_path-b.py',
    '../_base_/datasets/lup1m_dpal.py',
    '../_base_/schedules/dpal_adamw_100e.py',
    '../_base_/default_runtime.py',
]
