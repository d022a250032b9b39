# Table 11 "MAE-style": a decoder of two transformer blocks.
_base_ = '../vit-ti_path-b_lup1m.py'

model = dict(
    decoder=dict(
        _delete_=True,
        type='TransformerDecoder',
        in_dims=192,
        out_dims=768,
        embed_dims=256,
        num_layers=2,
        num_heads=8))
