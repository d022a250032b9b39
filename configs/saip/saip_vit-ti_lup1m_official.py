# SAIP as its public code computes it (stoa-xh91/SAIPv1 at fbb299c,
# csl_vit_tiny_patch16 + main_pretrain.py), where it differs from the paper
# (docs/methods.md, SAIP, one row per difference): the KL term between the
# teacher's and the student's last-block attention maps, a CSR decoder that
# sees only the anchor's class token, BCE-with-logits in
# CSS, their 1-D position resize, the teacher's momentum indexed by the
# iteration within the epoch, AdamW betas (0.9, 0.95), fp16 AMP.
#   tools/dist_train.sh configs/saip/saip_vit-ti_lup1m_official.py 8
_base_ = './saip_vit-ti_lup1m.py'

model = dict(
    attention_loss=dict(type='AttentionKLLoss'),
    # the CSR decoder sees the anchor's class token only
    csr_decoder=dict(anchor_tokens='cls_token'),
    css_loss=dict(mode='bce'),
    pos_embed_resize='sequence_1d',
    # their momentum_schedule[data_iter_step]: indexed within the epoch
    teacher_momentum_index='iter_in_epoch')
optim_wrapper = dict(
    dtype='float16',  # torch.cuda.amp.autocast + GradScaler, as theirs
    loss_scale='dynamic',
    optimizer=dict(betas=(0.9, 0.95)))
