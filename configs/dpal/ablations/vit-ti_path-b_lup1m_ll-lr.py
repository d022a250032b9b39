# Table 3: only the alignment objectives (local relation), with D-PaDe.
_base_ = '../vit-ti_path-b_lup1m.py'

model = dict(global_loss=None)
