# Table 11 "Standard MoE": 3 fixed MLP experts and a router.
_base_ = '../vit-ti_path-b_lup1m.py'

model = dict(
    decoder=dict(
        _delete_=True,
        type='MoEDecoder',
        in_dims=192,
        out_dims=768,
        num_heads=6))
