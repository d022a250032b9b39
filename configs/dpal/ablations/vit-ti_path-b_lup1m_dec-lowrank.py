# D-PaDe with rank-16 generated experts (3.59M decoder parameters instead of
# 29.35M, measured); everything else as Table 6.
_base_ = '../vit-ti_path-b_lup1m.py'

model = dict(decoder=dict(expert_rank=16))
