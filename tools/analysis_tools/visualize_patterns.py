"""Picture the three patterns a DPAL student learnt from its teacher, in the
style of Fig. 3 / Fig. 5 of the paper, on held-out crops.

    python tools/analysis_tools/visualize_patterns.py CONFIG CKPT \
        [--before CKPT0] [--out patterns.png] [--num-crops 4] \
        [--num-tracks 5] [--per-track 6] [--student-tokens decoded|raw] \
        [--cfg-options k=v ...]

Rows: ``--num-crops`` held-out single-person crops of different identities
(the middle crop of each of the longest tracks of ``DATA_ROOT/meta.json``)
and one copy-paste multi-person image (the first two of those crops pasted
side by side on a background of ``DATA_ROOT/backgrounds/`` by the config's
``CopyPasteMultiPerson`` under a fixed seed). Columns: the image | teacher |
student before distillation | student after (CKPT). Each picture is the
first three principal components of that image's patch tokens as RGB (a PCA
per image and model), on the token grid, upsampled with nearest. Views are
fed as the global training view: the whole crop resized to the config's
global view size, normalised by the model's data preprocessor.

Last row (Fig. 5 (a)): class tokens of ``--num-tracks`` identities
(``--per-track`` held-out crops of each track), projected to 2-D by PCA,
coloured by identity, for the teacher | student before | student after; the
title gives the silhouette score (cosine, full dimension) of the identities.

"Student" tokens are the decoded ones (D-PaDe output, in the teacher's
width) by default, ``--student-tokens raw`` shows the backbone's tokens.
"Before" is ``--before`` or, by default, the config's model built with the
config's seed (``randomness.seed``) and ``init_weights()``: the runner's
initialisation procedure (exactly the run's start weights for epoch-based
configs, another draw of the same initialisation for iteration-based ones,
see :func:`pattern_utils.build_model`).
"""
import os
import os.path as osp

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch.nn.functional as F
from matplotlib.gridspec import GridSpec
from mmengine.logging import MMLogger
from pattern_utils import (analysis_parser, build_model, compute_features,
                           load_heldout, load_view, make_multi_person, pca_2d,
                           pca_rgb, select_crops, select_tracks)
from sklearn.metrics import silhouette_score

import mmdpal  # noqa: F401  (registers modules, checkpoint globals)
from mmdpal.utils import silence_stack_deprecations


def parse_args(argv=None):
    parser = analysis_parser(
        'PCA pictures of teacher / student tokens on held-out '
        'crops (Fig. 3 / 5 of the paper)')
    parser.add_argument('--out', default='patterns.png', help='PNG to write')
    parser.add_argument(
        '--num-crops', type=int, default=4, help='single-person rows')
    parser.add_argument(
        '--num-tracks',
        type=int,
        default=5,
        help='identities in the class-token panel')
    parser.add_argument(
        '--per-track',
        type=int,
        default=6,
        help='crops per identity in the class-token panel')
    parser.add_argument(
        '--student-tokens',
        choices=['decoded', 'raw'],
        default='decoded',
        help='decoded (D-PaDe output) or raw backbone tokens')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the multi-person image')
    parser.add_argument('--dpi', type=int, default=110)
    return parser.parse_args(argv)


def tokens_of(feats, who: str, student_tokens: str):
    """(class tokens (N, C), patch tokens (N, L, C)) of the teacher or the
    student (decoded or raw)."""
    if who == 'teacher':
        return feats.teacher_cls, feats.teacher_patches
    if student_tokens == 'decoded':
        return feats.decoded_cls, feats.decoded_patches
    return feats.student_cls, feats.student_patches


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Cosine silhouette of the identities (nan if not defined)."""
    if len(set(labels.tolist())) < 2 or len(labels) <= len(set(labels)):
        return float('nan')
    return float(silhouette_score(x, labels, metric='cosine'))


def make_panel(feats: dict, views: dict, track_labels: list, who: str,
               student_tokens: str) -> dict:
    """What one column shows for one model.

    Args:
        feats (dict): :class:`Features` of the ``single`` views, the
            ``multi`` person image(s) and the identity crops (``ids``).
        views (dict): The ``single`` and ``multi`` images, whose sizes the
            PCA maps are upsampled to.
        track_labels (list): Track id of each identity crop.
        who (str): ``'teacher'`` or ``'student'``.
        student_tokens (str): ``'decoded'`` or ``'raw'``.

    Returns:
        dict: ``pca``: an RGB PCA map per row image, ``cls2d``: 2-D PCA of
        the L2-normalised class tokens of the identity crops (normalised so
        that a few long tokens do not make the whole projection),
        ``silhouette``: their cosine silhouette by identity.
    """
    pca = []
    for key in ('single', 'multi'):
        _, patches = tokens_of(feats[key], who, student_tokens)
        pca += [
            pca_rgb(p, feats[key].grid, img.shape[:2])
            for p, img in zip(patches, views[key])
        ]
    cls, _ = tokens_of(feats['ids'], who, student_tokens)
    cls = F.normalize(cls, dim=-1).numpy()
    return dict(
        pca=pca,
        cls2d=pca_2d(cls),
        silhouette=silhouette(cls, np.asarray(track_labels)))


def draw(panels: dict, images: list, row_names: list, track_labels: list,
         titles: dict, suptitle: str, out: str, dpi: int) -> None:
    """Lay out the picture: image rows x (image | teacher | before | after)
    and the class-token row.

    Args:
        panels (dict): ``who -> dict(pca=[(H, W, 3) per image], cls2d=(N, 2),
            silhouette=float)`` for who in teacher / before / after.
        images (list): BGR uint8 images of the rows.
        row_names (list): Label of each image row.
        track_labels (list): Track id of each class-token point.
        titles (dict): Column title of each ``who``.
        suptitle (str): Figure title.
        out (str): PNG path.
        dpi (int): Resolution.
    """
    whos = ['teacher', 'before', 'after']
    col_w = 1.45  # inches per column
    plt.rcParams.update({'font.size': 7})
    ratios = [img.shape[0] / img.shape[1] for img in images] + [1.05]
    fig = plt.figure(figsize=(4 * col_w + 0.5, col_w * sum(ratios) + 1.5))
    height = fig.get_figheight()
    gs = GridSpec(
        len(ratios),
        4,
        figure=fig,
        height_ratios=ratios,
        hspace=0.18,
        wspace=0.06,
        left=0.09,
        right=0.98,
        top=1 - 1.05 / height,
        bottom=0.35 / height)
    for r, img in enumerate(images):
        ax = fig.add_subplot(gs[r, 0])
        ax.imshow(img[..., ::-1], interpolation='nearest')
        ax.set_ylabel(row_names[r], fontsize=7)
        if r == 0:
            ax.set_title('image', fontsize=8)
        for c, who in enumerate(whos, start=1):
            ax_p = fig.add_subplot(gs[r, c])
            ax_p.imshow(panels[who]['pca'][r], interpolation='nearest')
            if r == 0:
                ax_p.set_title(titles[who], fontsize=8)
            ax_p.set_xticks([])
            ax_p.set_yticks([])
        ax.set_xticks([])
        ax.set_yticks([])

    # class tokens of several identities, PCA to 2-D (Fig. 5 (a))
    labels = np.asarray(track_labels)
    ids = list(dict.fromkeys(track_labels))
    colours = plt.get_cmap('tab10')
    r = len(images)
    ax_leg = fig.add_subplot(gs[r, 0])
    ax_leg.axis('off')
    for c, who in enumerate(whos, start=1):
        ax = fig.add_subplot(gs[r, c])
        pts = panels[who]['cls2d']
        for k, t in enumerate(ids):
            sel = labels == t
            ax.scatter(
                pts[sel, 0],
                pts[sel, 1],
                s=10,
                color=colours(k % 10),
                label=f'track {t}',
                edgecolors='none')
        ax.set_title(
            f'{titles[who].split(" (")[0]}\n'
            f'silhouette {panels[who]["silhouette"]:.2f}',
            fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect('equal', adjustable='datalim')
    handles, names = fig.axes[-1].get_legend_handles_labels()
    ax_leg.legend(
        handles,
        names,
        loc='center',
        fontsize=6,
        frameon=False,
        title='class tokens\nby identity\n(PCA 2-D of\n'
        'L2-normed tokens)',
        title_fontsize=7)
    fig.suptitle(suptitle, fontsize=8)
    if osp.dirname(out):
        os.makedirs(osp.dirname(out), exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)


def main(argv=None):
    matplotlib.use('Agg')  # files only, no display
    args = parse_args(argv)
    # keeps mmengine's per-parameter init_weights() report out of the output
    MMLogger.get_instance('visualize_patterns', log_level='WARNING')
    cfg, data_root, settings, crops = load_heldout(args.config,
                                                   args.cfg_options)
    rows = select_crops(crops, args.num_crops)
    if len(rows) < 2:
        raise ValueError(f'the held-out crops of {data_root!r} have fewer '
                         'than two identities (track_id): no multi-person '
                         'image can be made')
    tracks = select_tracks(crops, args.num_tracks, args.per_track)
    track_crops = [c for _, cs in tracks for c in cs]
    track_labels = [t for t, cs in tracks for _ in cs]

    def view(c):
        return load_view(c['path'], settings['size'],
                         settings['interpolation'], settings['backend'])

    singles = [view(c) for c in rows]
    multi = make_multi_person([(rows[0], rows[1])],
                              osp.join(data_root, 'backgrounds/'),
                              settings['multi_person'],
                              seed=args.seed)
    track_views = [view(c) for c in track_crops]
    views = dict(single=singles, multi=multi)
    images = singles + multi
    row_names = [f'track {c["track_id"]}\nframe {c["frame"]}' for c in rows]
    row_names.append(f'tracks {rows[0]["track_id"]} + {rows[1]["track_id"]}'
                     '\n(copy-paste)')

    panels = {}
    models = dict(before=args.before, after=args.checkpoint)
    for name, ckpt in models.items():
        model = build_model(cfg, ckpt)
        feats = dict(
            single=compute_features(model, singles),
            multi=compute_features(model, multi),
            ids=compute_features(model, track_views))
        del model
        panels[name] = make_panel(feats, views, track_labels, 'student',
                                  args.student_tokens)
        if name == 'after':  # the teacher is the same in every model
            panels['teacher'] = make_panel(feats, views, track_labels,
                                           'teacher', args.student_tokens)

    arch = cfg.model.teacher.get('backbone', {}).get('arch', '')
    if not isinstance(arch, str):  # a custom arch dict: no name to show
        arch = ''
    titles = dict(
        teacher=f'teacher ({arch})' if arch else 'teacher',
        before='student before',
        after='student after')
    before_name = osp.basename(args.before) if args.before else \
        f'init (seed {cfg.get("randomness", {}).get("seed", 0)})'
    decoded = ' (decoder output)' if args.student_tokens == 'decoded' else ''
    suptitle = (
        f'{osp.basename(args.config)}, held-out crops of {data_root}\n'
        'patch tokens: PCA per image, 3 components -> RGB\n'
        f'student = {args.student_tokens} student tokens{decoded}\n'
        f'before: {before_name}   after: {osp.basename(args.checkpoint)}')
    draw(panels, images, row_names, track_labels, titles, suptitle, args.out,
         args.dpi)
    print(f'written {args.out}')


if __name__ == '__main__':
    silence_stack_deprecations()
    main()
