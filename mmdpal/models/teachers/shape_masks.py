"""The teacher's shape masks M_shape (Eq. 2): the paper's class-token
attention, the authors' PCA of the patch tokens (per image or over the
batch), or none. Each ``ViTTeacher(shape_mask=...)`` option names one of
:data:`SHAPE_MASKS`."""
import torch


def min_max_scale(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Scale each row of ``x`` (B, L) to [0, 1]."""
    lo = x.amin(dim=1, keepdim=True)
    hi = x.amax(dim=1, keepdim=True)
    return (x - lo) / (hi - lo).clamp_min(eps)


def pca_shape_mask(patch_tokens: torch.Tensor,
                   reference: torch.Tensor,
                   num_iters: int = 30) -> torch.Tensor:
    """First principal component of each image's patch tokens, in [0, 1].

    The authors' variant of M_shape. Unlike their code (one PCA over the whole
    batch, on the CPU, arbitrary sign) this runs per image on the tokens'
    device, without a host synchronisation (batched power iteration, as
    x^T (x v), instead of an SVD, whose error checks can sync, and without
    forming the C x C covariance), and the
    sign is fixed so that the component correlates positively with
    ``reference`` (the class-token attention): foreground stays high.

    Args:
        patch_tokens (Tensor): (B, L, C).
        reference (Tensor): (B, L) map the sign is aligned to.
        num_iters (int): Power iterations. Defaults to 30.

    Returns:
        Tensor: (B, L) in [0, 1].
    """
    x = patch_tokens.float()
    x = x - x.mean(dim=1, keepdim=True)
    with torch.autocast(device_type=x.device.type, enabled=False):
        pc1 = _first_component(x, num_iters)
    ref = reference.float() - reference.float().mean(dim=1, keepdim=True)
    sign = torch.sign((pc1 * ref).sum(dim=1, keepdim=True))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return min_max_scale(pc1 * sign)


def pca_batch_shape_mask(patch_tokens: torch.Tensor) -> torch.Tensor:
    """The authors' M_shape as their code computes it: one PCA over the
    patch tokens of the whole batch, min-max scaled over the batch.

    Their teacher runs ``PCA(n_components=1).fit_transform`` (scikit-learn)
    on the B*L tokens of the (per-GPU) batch, on the CPU, then
    ``minmax_scale`` over those B*L values. The same here, on the tokens'
    device in float64 (scikit-learn turns their fp16 tokens into float64):
    the C x C covariance, its top eigenvector (what scikit-learn's
    ``covariance_eigh`` solver computes for B*L >= 10 C), one host
    synchronisation per call (theirs copies to the CPU).

    The sign is theirs: scikit-learn 1.6.1 (their requirements) flips the
    component so that its largest-magnitude loading, over the C teacher
    channels, is positive (``svd_flip(..., u_based_decision=False)``).
    Nothing ties that to the person: whether the foreground or the
    background comes out high depends on the teacher's channels, and may
    change from batch to batch. (:func:`pca_shape_mask`, per image, aligns
    the sign with the class-token attention instead.)

    Args:
        patch_tokens (Tensor): (B, L, C).

    Returns:
        Tensor: (B, L) in [0, 1], min and max over the whole batch.
    """
    B, L, C = patch_tokens.shape
    with torch.autocast(device_type=patch_tokens.device.type, enabled=False):
        x = patch_tokens.reshape(B * L, C).double()
        x = x - x.mean(dim=0, keepdim=True)
        cov = x.T @ x / max(B * L - 1, 1)
        v = torch.linalg.eigh(cov)[1][:, -1]  # eigenvalues ascend
        sign = torch.sign(v[v.abs().argmax()])
        v = v * torch.where(sign == 0, torch.ones_like(sign), sign)
        pc1 = x @ v
        lo, hi = pc1.min(), pc1.max()
        # minmax_scale leaves a constant input at 0 (a zero range counts 1)
        scale = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
        return ((pc1 - lo) / scale).reshape(B, L).float()


def _first_component(x: torch.Tensor, num_iters: int) -> torch.Tensor:
    """Projection of centred (B, L, C) tokens on their first principal
    direction, by power iteration in fp32: (B, L)."""
    v = torch.ones(x.shape[0], x.shape[2], 1, device=x.device) / x.shape[2]**.5
    for _ in range(num_iters):
        v = x.transpose(1, 2) @ (x @ v)  # covariance times v, (B, C, 1)
        v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (x @ v)[..., 0]


def _attention_shape_mask(patches: torch.Tensor,
                          cls_attn: torch.Tensor) -> torch.Tensor:
    """Paper M_shape: the class-token attention, min-max scaled."""
    return cls_attn


def _pca_shape_mask(patches: torch.Tensor,
                    cls_attn: torch.Tensor) -> torch.Tensor:
    """The authors' M_shape: first PCA component of the patch tokens."""
    return pca_shape_mask(patches, reference=cls_attn)


def _pca_batch_shape_mask(patches: torch.Tensor,
                          cls_attn: torch.Tensor) -> torch.Tensor:
    """The authors' M_shape exactly: one PCA over the whole batch."""
    return pca_batch_shape_mask(patches)


def _no_shape_mask(patches: torch.Tensor,
                   cls_attn: torch.Tensor) -> torch.Tensor:
    """No M_shape: every patch weighs 1 (plain token regression)."""
    return torch.ones_like(cls_attn)


SHAPE_MASKS = dict(
    attention=_attention_shape_mask,
    pca=_pca_shape_mask,
    pca_batch=_pca_batch_shape_mask,
    none=_no_shape_mask)
TOKEN_SHAPE_MASKS = ('pca', 'pca_batch')  # read the patch tokens
