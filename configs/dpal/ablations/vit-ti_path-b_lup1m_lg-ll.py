# Table 3: only the alignment objectives (global local), with D-PaDe.
_base_ = '../vit-ti_path-b_lup1m.py'

model = dict(relation_loss=None)
