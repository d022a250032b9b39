# Table 11 "w/o decoder" (also Table 3's last row): three objectives, the
# student tokens projected to the teacher's width by one linear layer.
_base_ = '../vit-ti_path-b_lup1m.py'

model = dict(
    decoder=dict(
        _delete_=True, type='LinearDecoder', in_dims=192, out_dims=768))
