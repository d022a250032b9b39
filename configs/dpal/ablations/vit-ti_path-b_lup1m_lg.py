# Table 3: only the alignment objectives (global), with D-PaDe.
_base_ = '../vit-ti_path-b_lup1m.py'

model = dict(local_loss=None, relation_loss=None)
