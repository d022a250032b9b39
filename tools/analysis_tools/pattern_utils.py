"""What a DPAL student learnt from its teacher, measured on held-out crops.

The shared part of ``tools/analysis_tools/visualize_patterns.py`` (PCA
pictures in the style of Fig. 3 / Fig. 5 of the paper) and
``tools/analysis_tools/eval_alignment.py`` (alignment numbers):

* the held-out single-person crops of a LUPerson-style folder made by
  ``demo/vtest_to_lup.py`` (``DATA_ROOT/heldout/`` and
  ``DATA_ROOT/meta.json``, with each crop's frame, split and track_id);
* deterministic views, fed the way training feeds the global view: the whole
  crop resized to the size of the config's first ``RandomResizedCrop``, then
  normalised by the model's ``data_preprocessor``;
* deterministic copy-paste multi-person images of two held-out crops on a
  background of ``DATA_ROOT/backgrounds/`` (the config's
  ``CopyPasteMultiPerson`` under a fixed ``np.random`` seed);
* the model of a config with its teacher loaded, either at initialisation
  ("before") or from a training checkpoint ("after");
* the features: raw and decoded student tokens, teacher targets;
* the alignment metrics and the PCA projections of the pictures.
"""
import argparse
import json
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint, set_random_seed

from mmdpal.models.losses.relation_align import relation_kl, token_relation
from mmdpal.registry import MODELS, TRANSFORMS

# --------------------------------------------------------------------- data


def data_root_of(cfg: Config) -> str:
    """The data root of the config's training set (``DATA_ROOT``)."""
    return cfg.train_dataloader.dataset.get('data_root', '') or ''


def _data_hint(data_root: str) -> str:
    return ('make it with `python demo/vtest_to_lup.py '
            f'--out {data_root.rstrip("/") or "data/vtest_lup"}` (or point '
            'the config at another folder with --cfg-options '
            'train_dataloader.dataset.data_root=DIR)')


def write_json(path: str, obj, indent: int = 1) -> None:
    """Write ``obj`` to ``path`` as JSON, making its folder first."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f, indent=indent)


def read_meta(data_root: str) -> dict:
    """Read ``DATA_ROOT/meta.json``.

    Args:
        data_root (str): Folder written by ``vtest_to_lup.py``.

    Returns:
        dict: The meta data; ``meta['crops']`` lists every crop as a dict
        with ``file`` (relative to ``data_root``), ``frame``, ``track_id``
        and ``split`` (``'train'`` or ``'heldout'``).
    """
    path = osp.join(data_root, 'meta.json')
    if not osp.isdir(data_root):
        raise FileNotFoundError(
            f'data folder not found: {data_root!r}; {_data_hint(data_root)}')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path!r} not found (the held-out crops are listed there); '
            f'{_data_hint(data_root)}')
    with open(path) as f:
        meta = json.load(f)
    if 'crops' not in meta:
        raise KeyError(
            f'{path!r} has no "crops" list; {_data_hint(data_root)}')
    return meta


def heldout_crops(data_root: str) -> List[dict]:
    """The held-out crops of ``meta.json``, sorted by (frame, track_id).

    Args:
        data_root (str): Folder with ``meta.json`` and ``heldout/``.

    Returns:
        list[dict]: The crops' meta entries, each with ``path`` added.
    """
    crops = []
    for c in read_meta(data_root)['crops']:
        if c.get('split') != 'heldout':
            continue
        crops.append(dict(c, path=osp.join(data_root, c['file'])))
    if not crops:
        raise ValueError(f'no held-out crops (split "heldout") in '
                         f'{osp.join(data_root, "meta.json")!r}; '
                         f'{_data_hint(data_root)}')
    missing = [c['path'] for c in crops if not osp.isfile(c['path'])]
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} held-out crops of meta.json are missing, e.g. '
            f'{missing[0]!r}; {_data_hint(data_root)}')
    return sorted(crops, key=lambda c: (c['frame'], c['track_id'], c['file']))


def _tracks(crops: Sequence[dict]) -> List[Tuple[int, List[dict]]]:
    """Crops grouped by track_id, longest track first (ties: smaller id),
    each track's crops in frame order."""
    groups = defaultdict(list)
    for c in crops:
        groups[c['track_id']].append(c)
    tracks = [(t, sorted(cs, key=lambda c: (c['frame'], c['file'])))
              for t, cs in groups.items()]
    return sorted(tracks, key=lambda t: (-len(t[1]), t[0]))


def analysis_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every analysis tool of a DPAL checkpoint takes: the
    config, the checkpoint ("after"), ``--before`` and ``--cfg-options``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help='DPAL config file')
    parser.add_argument('checkpoint', help='training checkpoint ("after")')
    parser.add_argument(
        '--before',
        help='checkpoint of the student before distillation (default: the '
        'config\'s model initialised with the config\'s seed)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, e.g. '
        'train_dataloader.dataset.data_root=DIR model.teacher.checkpoint=PTH')
    return parser


def load_heldout(config: str, cfg_options: Optional[dict] = None):
    """The config (with ``cfg_options`` merged) and its held-out data.

    Returns:
        tuple: (cfg, data_root, view settings, held-out crops).
    """
    cfg = Config.fromfile(config)
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    data_root = data_root_of(cfg)
    return cfg, data_root, view_settings(cfg), heldout_crops(data_root)


def select_crops(crops: Sequence[dict], num: int) -> List[dict]:
    """``num`` crops of different identities, chosen deterministically: the
    middle crop (in frame order) of each of the ``num`` longest tracks.

    Args:
        crops (list[dict]): Held-out crops (see :func:`heldout_crops`).
        num (int): How many crops (fewer if there are fewer tracks).

    Returns:
        list[dict]: The chosen crops.
    """
    return [cs[len(cs) // 2] for _, cs in _tracks(crops)[:num]]


def select_tracks(crops: Sequence[dict],
                  num_tracks: int = 5,
                  per_track: int = 6) -> List[Tuple[int, List[dict]]]:
    """Crops of several identities for the class-token picture: the
    ``num_tracks`` longest tracks, up to ``per_track`` crops of each evenly
    spread over the track.

    Returns:
        list[tuple]: ``(track_id, crops)`` pairs.
    """
    chosen = []
    for track_id, cs in _tracks(crops)[:num_tracks]:
        idx = np.unique(
            np.linspace(0,
                        len(cs) - 1, min(per_track, len(cs))).round())
        chosen.append((track_id, [cs[int(i)] for i in idx]))
    return chosen


def multi_person_pairs(crops: Sequence[dict]) -> List[Tuple[dict, dict]]:
    """Deterministic pairs of crops of two different identities: with the
    crops in (frame, track_id) order, crop ``i`` goes with crop
    ``i + n // 2``; pairs of the same track are left out.

    Returns:
        list[tuple]: ``(left, right)`` crop pairs.
    """
    crops = sorted(crops, key=lambda c: (c['frame'], c['track_id'], c['file']))
    half = len(crops) // 2
    return [(crops[i], crops[half + i]) for i in range(half)
            if crops[i]['track_id'] != crops[half + i]['track_id']]


def view_settings(cfg: Config) -> dict:
    """How the config's pipeline makes the global view and the multi-person
    image.

    Args:
        cfg (Config): A DPAL config.

    Returns:
        dict: ``size`` (h, w), ``interpolation`` and ``backend`` of the first
        ``RandomResizedCrop`` of the first ``MultiView`` group (the global
        view), and ``multi_person``: the ``CopyPasteMultiPerson`` arguments
        but ``background_dir`` (``size``, ``person_size``...).
    """
    pipeline = cfg.train_dataloader.dataset.pipeline
    multi_view = next((t for t in pipeline if t['type'] == 'MultiView'), None)
    if multi_view is None:
        raise KeyError('the config\'s train pipeline has no MultiView: the '
                       'global view size cannot be read')
    crop = next((t for t in multi_view['transforms'][0]
                 if t['type'].endswith(('RandomResizedCrop', 'ViewAugment'))),
                None)
    if crop is None:
        raise KeyError('the first MultiView group of the train pipeline has '
                       'no RandomResizedCrop: the global view size cannot be '
                       'read')
    copy_paste = next(
        (t for t in pipeline if t['type'].endswith('CopyPasteMultiPerson')),
        None)
    if copy_paste is None:
        raise KeyError('the config\'s train pipeline has no '
                       'CopyPasteMultiPerson: the multi-person view cannot be '
                       'made')
    scale = crop['size'] if 'size' in crop else crop['scale']
    scale = (scale, scale) if isinstance(scale, int) else tuple(scale)
    multi_person = {
        k: v
        for k, v in copy_paste.items() if k not in ('type', 'background_dir')
    }
    return dict(
        size=scale,
        interpolation=crop.get('interpolation', 'bilinear'),
        backend=crop.get('backend', 'cv2'),
        multi_person=multi_person)


def load_view(path: str,
              size: Tuple[int, int],
              interpolation: str = 'bilinear',
              backend: str = 'cv2') -> np.ndarray:
    """Read an image and resize it whole to ``size`` (h, w).

    Returns:
        np.ndarray: BGR uint8 (h, w, 3), as the train pipeline gives it.
    """
    img = mmcv.imread(path)
    if img is None:
        raise OSError(f'cannot decode the image {path!r}')
    return mmcv.imresize(
        img, tuple(size)[::-1], interpolation=interpolation, backend=backend)


def make_multi_person(pairs: Sequence[Tuple[dict, dict]],
                      background_dir: str,
                      settings: dict,
                      seed: int = 0) -> List[np.ndarray]:
    """Copy-paste multi-person images, one per pair of crops.

    The config's ``CopyPasteMultiPerson`` (``settings``, see
    :func:`view_settings`) pastes the left crop into the left half and the
    right crop into the right half of a background crop; its random choices
    are made under ``np.random.seed(seed + i)`` for pair ``i`` (the global
    numpy random state is restored afterwards).

    Args:
        pairs (list[tuple]): ``(left, right)`` crops (dicts with ``path``).
        background_dir (str): Folder of person-free backgrounds.
        settings (dict): ``view_settings(cfg)['multi_person']``.
        seed (int): Base seed. Defaults to 0.

    Returns:
        list[np.ndarray]: BGR uint8 images of ``settings['size']``.
    """
    if not osp.isdir(background_dir):
        raise FileNotFoundError(
            f'background folder not found: {background_dir!r}; '
            f'{_data_hint(osp.dirname(background_dir.rstrip("/")))}')
    transform = TRANSFORMS.build(
        dict(
            type='CopyPasteMultiPerson',
            background_dir=background_dir,
            **settings))
    state = np.random.get_state()
    images = []
    try:
        for i, (left, right) in enumerate(pairs):
            np.random.seed(seed + i)
            # the transform pastes views[-1] left and views[0] right
            results = transform(
                dict(img=[
                    mmcv.imread(right['path']),
                    mmcv.imread(left['path'])
                ]))
            images.append(results['img'][-1])
    finally:
        np.random.set_state(state)
    return images


# -------------------------------------------------------------------- model


def _teacher_hint(cfg: Config, path: str) -> str:
    arch = str(cfg.model.teacher.get('backbone', {}).get('arch', ''))
    if 'dinov2' in arch:
        return f'python tools/model_converters/dinov2_onnx_to_mmdpal.py {path}'
    return ('python tools/model_converters/path_to_mmdpal.py RELEASED.pth '
            f'{path}')


def build_model(cfg: Config,
                checkpoint: Optional[str] = None,
                seed: Optional[int] = None) -> torch.nn.Module:
    """The config's DPAL model with its teacher, in eval mode on the CPU.

    The model is built with all random number generators seeded with
    ``seed`` (default: the config's ``randomness.seed``, as the runner does)
    and initialised with ``init_weights()``. Without ``checkpoint`` this is
    the student "before distillation", made by the runner's procedure. For
    an epoch-based config (``EpochBasedTrainLoop``) these are exactly the
    weights training starts from (checked against a run with lr=0); with
    ``IterBasedTrainLoop`` the runner creates its dataloader iterator, which
    draws one torch random number, between building and initialising the
    model, so the result is another draw of the same initialisation, not
    the run's exact start (pass ``checkpoint`` saved before training for
    that). With ``checkpoint`` (a training checkpoint: student and decoder)
    the weights are then loaded strictly.

    Args:
        cfg (Config): A DPAL config.
        checkpoint (str, optional): Training checkpoint to load.
        seed (int, optional): Seed of the initialisation.

    Returns:
        nn.Module: The ``DPALDistiller``.
    """
    init_default_scope(cfg.get('default_scope', 'mmdpal'))
    teacher_ckpt = cfg.model.teacher.get('checkpoint')
    if teacher_ckpt and not osp.isfile(teacher_ckpt):
        raise FileNotFoundError(
            f'teacher checkpoint not found: {teacher_ckpt!r}; make it with '
            f'`{_teacher_hint(cfg, teacher_ckpt)}` (or set '
            'model.teacher.checkpoint with --cfg-options)')
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'checkpoint not found: {checkpoint!r}; train one with '
            '`python tools/train.py CONFIG` (it writes iter_N.pth / '
            'epoch_N.pth in the work dir)')
    if seed is None:
        seed = cfg.get('randomness', {}).get('seed', 0)
        seed = 0 if seed is None else seed
    set_random_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if checkpoint is not None:
        load_checkpoint(
            model,
            checkpoint,
            map_location='cpu',
            strict=True,
            logger='silent')
    return model.eval()


class Features(NamedTuple):
    """Student and teacher features of a set of images.

    Attributes:
        student_cls (Tensor): Raw student class tokens (N, C_s).
        student_patches (Tensor): Raw student patch tokens (N, L, C_s).
        decoded_cls (Tensor): Decoded class tokens (N, C_t), the decoder run
            on the class token alone, as the global loss does.
        decoded_patches (Tensor): Decoded patch tokens (N, L, C_t).
        teacher_cls (Tensor): (N, C_t).
        teacher_patches (Tensor): (N, L, C_t) on the student's grid.
        shape_mask (Tensor): The teacher's M_shape (N, L).
        relation (Tensor): The teacher's relation target (N, L, L).
        grid (tuple): The token grid (h, w).
    """
    student_cls: torch.Tensor
    student_patches: torch.Tensor
    decoded_cls: torch.Tensor
    decoded_patches: torch.Tensor
    teacher_cls: torch.Tensor
    teacher_patches: torch.Tensor
    shape_mask: torch.Tensor
    relation: torch.Tensor
    grid: Tuple[int, int]


def to_inputs(model: torch.nn.Module,
              images: Sequence[np.ndarray]) -> torch.Tensor:
    """Stack BGR uint8 (H, W, 3) images of one size and normalise them with
    the model's ``data_preprocessor`` (BGR -> RGB, mean / std)."""
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    data = model.data_preprocessor(dict(inputs=[x], data_samples=None))
    return data['inputs'][0]


@torch.no_grad()
def compute_features(model: torch.nn.Module,
                     images: Sequence[np.ndarray],
                     batch_size: int = 32) -> Features:
    """Run student, decoder and teacher on images of one size.

    Args:
        model (nn.Module): A ``DPALDistiller`` (see :func:`build_model`).
        images (list[np.ndarray]): BGR uint8 images, all of one size.
        batch_size (int): Images per forward pass. Defaults to 32.

    Returns:
        Features: Everything on the CPU, in float32.
    """
    if len(images) == 0:
        raise ValueError('compute_features needs at least one image')
    parts, grid = [], None
    for i in range(0, len(images), batch_size):
        x = to_inputs(model, images[i:i + batch_size])
        s_cls, s_patch, grid = model.student_tokens(x)
        t = model.teacher(x, grid)
        d_cls = model.decoder(s_cls[:, None]).tokens[:, 0]
        d_patch = model.decoder(s_patch).tokens
        parts.append([
            s_cls, s_patch, d_cls, d_patch, t.cls_token, t.patch_tokens,
            t.shape_mask, t.relation
        ])
    joined = [torch.cat(p).float().cpu() for p in zip(*parts)]
    return Features(*joined, grid=tuple(grid))


# ------------------------------------------------------------------ metrics


def centred_cosine(student: torch.Tensor,
                   teacher: torch.Tensor,
                   rel_tol: float = 1e-3) -> torch.Tensor:
    """Cosine of ``student - student.mean(0)`` and ``teacher -
    teacher.mean(0)`` over the last axis.

    A deviation shorter than ``rel_tol`` times the side's mean token norm
    counts as none (cosine 0), so that rounding noise of an
    image-independent student does not give random cosines.

    Args:
        student (Tensor): (N, ..., C).
        teacher (Tensor): (N, ..., C).
        rel_tol (float): Relative tolerance. Defaults to 1e-3.

    Returns:
        Tensor: (N, ...).
    """
    ds, dt = student - student.mean(0), teacher - teacher.mean(0)
    tol_s = rel_tol * student.norm(dim=-1).mean().clamp_min(1e-12)
    tol_t = rel_tol * teacher.norm(dim=-1).mean().clamp_min(1e-12)
    norm_s, norm_t = ds.norm(dim=-1), dt.norm(dim=-1)
    cos = (ds * dt).sum(-1) / (
        norm_s.clamp_min(tol_s) * norm_t.clamp_min(tol_t))
    return torch.where((norm_s < tol_s) | (norm_t < tol_t),
                       torch.zeros_like(cos), cos)


def alignment_metrics(single: Features,
                      multi: Optional[Features] = None) -> Dict[str, float]:
    """How close the decoded student features are to the teacher's.

    Args:
        single (Features): Of single-person views.
        multi (Features, optional): Of multi-person images.

    Returns:
        dict: Higher cosines and lower KL are better.

        * ``global_cos``: mean cosine of decoded and teacher class tokens;
        * ``global_cos_centred``: the same after subtracting from each side
          its mean class token over the evaluated images: how much of what
          makes one image differ from the others the student predicts (a
          student that outputs the teacher's mean token gets a high
          ``global_cos`` but 0 here);
        * ``local_cos``: mean cosine of decoded and teacher patch tokens
          over all patches; ``local_cos_shape``: averaged per image with the
          teacher's M_shape as weights, then over images;
          ``local_cos_centred``: after subtracting each side's mean patch
          token of each grid position over the images;
        * with ``multi``: ``relation_kl``: mean over images and rows of
          KL(F_t^r || softmax(F F^T / sqrt(C))) of the decoded patch tokens
          (Eq. 6).
    """
    metrics = dict(num_images=int(single.decoded_cls.shape[0]))
    s_cls, t_cls = single.decoded_cls, single.teacher_cls
    metrics['global_cos'] = F.cosine_similarity(
        s_cls, t_cls, dim=-1).mean().item()
    metrics['global_cos_centred'] = centred_cosine(s_cls, t_cls).mean().item()
    s_p, t_p = single.decoded_patches, single.teacher_patches
    cos = F.cosine_similarity(s_p, t_p, dim=-1)  # (N, L)
    metrics['local_cos'] = cos.mean().item()
    m = single.shape_mask
    metrics['local_cos_shape'] = ((cos * m).sum(1) /
                                  m.sum(1).clamp_min(1e-12)).mean().item()
    metrics['local_cos_centred'] = centred_cosine(s_p, t_p).mean().item()
    if multi is not None:
        metrics['num_multi_images'] = int(multi.relation.shape[0])
        log_student = token_relation(multi.decoded_patches)
        metrics['relation_kl'] = relation_kl(multi.relation,
                                             log_student).mean().item()
    return metrics


def reference_metrics(single: Features,
                      multi: Optional[Features] = None) -> Dict[str, float]:
    """The metrics of :func:`alignment_metrics` for trivial students that
    know the teacher's averages but nothing of the image, to read the
    students' numbers against.

    Returns:
        dict: ``global_cos``, ``local_cos``, ``local_cos_shape`` of a student
        that outputs the teacher's mean class token and, at each grid
        position, the teacher's mean patch token of that position (over the
        evaluated images; its centred cosines are 0 by construction); with
        ``multi``: ``relation_kl`` of a student whose relation map is the
        teacher's mean relation map and ``relation_kl_uniform`` of one whose
        relation is uniform (it relates nothing).
    """
    mean_student = single._replace(
        decoded_cls=single.teacher_cls.mean(0).expand_as(single.teacher_cls),
        decoded_patches=single.teacher_patches.mean(0).expand_as(
            single.teacher_patches))
    full = alignment_metrics(mean_student)
    metrics = {
        k: full[k]
        for k in ('num_images', 'global_cos', 'local_cos', 'local_cos_shape')
    }
    if multi is not None:
        t = multi.relation
        metrics['num_multi_images'] = int(t.shape[0])
        metrics['relation_kl'] = relation_kl(
            t, torch.log(t.mean(0, keepdim=True))).mean().item()
        metrics['relation_kl_uniform'] = relation_kl(
            t, torch.full_like(t, -np.log(t.shape[-1]))).mean().item()
    return metrics


# ---------------------------------------------------------------------- PCA


def pca_project(x, num_components: int) -> np.ndarray:
    """Project rows of ``x`` (N, C) on their first principal components.

    The sign of each component is fixed (the projection of largest
    magnitude is positive), so the result is deterministic.

    Returns:
        np.ndarray: (N, num_components) float64.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    proj = u[:, :num_components] * s[:num_components]
    if proj.shape[1] < num_components:  # fewer samples than components
        proj = np.pad(proj, ((0, 0), (0, num_components - proj.shape[1])))
    rows = np.abs(proj).argmax(axis=0)
    signs = np.sign(proj[rows, np.arange(num_components)])
    return proj * np.where(signs == 0, 1, signs)


def pca_2d(x) -> np.ndarray:
    """First two principal components of the rows of ``x`` (N, C)."""
    return pca_project(x, 2)


def pca_rgb(tokens,
            grid: Tuple[int, int],
            out_size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """The first three principal components of one image's patch tokens as
    RGB, each min-max scaled to [0, 1] (the PCA pictures of Fig. 3 / 5).

    Args:
        tokens (Tensor | np.ndarray): (L, C) patch tokens of one image.
        grid (tuple): Their grid (h, w), h * w = L.
        out_size (tuple, optional): (H, W) to upsample to (nearest).

    Returns:
        np.ndarray: float32 (h, w, 3) or (H, W, 3) in [0, 1].
    """
    proj = pca_project(tokens, 3)
    lo, hi = proj.min(axis=0), proj.max(axis=0)
    rgb = (proj - lo) / np.maximum(hi - lo, 1e-12)
    rgb = rgb.reshape(*grid, 3).astype(np.float32)
    if out_size is not None:
        rgb = mmcv.imresize(
            rgb, tuple(out_size)[::-1], interpolation='nearest')
    return rgb
