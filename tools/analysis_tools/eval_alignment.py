"""How well the decoded student features of a DPAL checkpoint align with the
teacher, on the held-out crops of the config's data root.

    python tools/analysis_tools/eval_alignment.py CONFIG CKPT \
        [--before CKPT0] [--baseline CKPT_B] [--out result.json] \
        [--cfg-options k=v ...]

e.g. ``python tools/analysis_tools/eval_alignment.py
configs/dpal/demo_vit-ti_dinov2-s_vtest.py
work_dirs/demo_vit-ti_dinov2-s_vtest/iter_600.pth``.

Data: every held-out crop listed in ``DATA_ROOT/meta.json`` (``DATA_ROOT`` is
``train_dataloader.dataset.data_root``), resized whole to the global view
size of the config and normalised by the model's data preprocessor; and one
copy-paste multi-person image per pair of held-out crops of two identities
(the config's ``CopyPasteMultiPerson`` on ``DATA_ROOT/backgrounds/`` under a
fixed seed). See :mod:`pattern_utils`.

Metrics (decoded student tokens vs. teacher, see
:func:`pattern_utils.alignment_metrics`): ``global_cos``
(class tokens), ``local_cos`` and ``local_cos_shape`` (patch tokens, plain
and weighted by the teacher's M_shape), ``global_cos_centred`` and
``local_cos_centred`` (the same after subtracting each side's mean over the
images: what makes an image differ from the others), ``relation_kl``
(KL(teacher || student) of the relation maps of the multi-person images,
Eq. 6). The row ``mean teacher (ref)`` gives the numbers of a student that
knows only the teacher's averages (mean class token, mean patch token per
grid position, mean relation map; ``relation_kl_uniform``: a uniform
relation), see :func:`pattern_utils.reference_metrics`: a
student above it in the plain cosines may still have learnt only the mean,
the centred cosines tell.

Models: ``before`` is the student at initialisation (``--before`` or, by
default, the config's model built with the config's seed and
``init_weights()``, see :func:`pattern_utils.build_model`);
``after`` is CKPT; ``baseline`` is ``--baseline`` (e.g.
a student whose backbone stayed frozen at initialisation while only the
decoder was trained) when given.
"""
import os.path as osp

from mmengine.logging import MMLogger
from pattern_utils import (alignment_metrics, analysis_parser, build_model,
                           compute_features, load_heldout, load_view,
                           make_multi_person, multi_person_pairs,
                           reference_metrics, write_json)

import mmdpal  # noqa: F401  (registers modules and checkpoint safe globals)
from mmdpal.utils import silence_stack_deprecations

COLUMNS = [('global_cos', 'global cos ^'),
           ('global_cos_centred', 'global centred ^'),
           ('local_cos', 'local cos ^'),
           ('local_cos_shape', 'local M_shape ^'),
           ('local_cos_centred', 'local centred ^'),
           ('relation_kl', 'relation KL v')]
REFERENCE = 'mean teacher (ref)'


def parse_args(argv=None):
    parser = analysis_parser(
        'Alignment of decoded student features with the teacher '
        'on held-out crops')
    parser.add_argument(
        '--baseline', help='checkpoint of a baseline student (optional)')
    parser.add_argument(
        '--out', default='alignment.json', help='JSON file to write')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the multi-person images')
    return parser.parse_args(argv)


def format_table(results: dict) -> str:
    """An aligned text table: one row per model, one column per metric."""
    header = ['model'] + [title for _, title in COLUMNS]
    rows = [header]
    for name, metrics in results.items():
        rows.append([name] + [
            f'{metrics[key]:.4f}' if key in metrics else '-'
            for key, _ in COLUMNS
        ])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ['  '.join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    # keeps mmengine's per-parameter init_weights() report out of the output
    MMLogger.get_instance('eval_alignment', log_level='WARNING')
    cfg, data_root, settings, crops = load_heldout(args.config,
                                                   args.cfg_options)
    views = [
        load_view(c['path'], settings['size'], settings['interpolation'],
                  settings['backend']) for c in crops
    ]
    pairs = multi_person_pairs(crops)
    multi = make_multi_person(
        pairs,
        osp.join(data_root, 'backgrounds/'),
        settings['multi_person'],
        seed=args.seed)
    print(f'{len(views)} held-out crops at {settings["size"]}, '
          f'{len(multi)} multi-person images at '
          f'{tuple(settings["multi_person"].get("size", ""))}')

    models = dict(before=args.before, after=args.checkpoint)
    if args.baseline:
        models['baseline'] = args.baseline
    results = {}
    for name, ckpt in models.items():
        model = build_model(cfg, ckpt)
        single_feats = compute_features(model, views, args.batch_size)
        multi_feats = compute_features(model, multi, args.batch_size)
        del model
        results[name] = alignment_metrics(single_feats, multi_feats)
        results[name]['checkpoint'] = ckpt or 'init (config seed)'
    # the teacher is the same in every model: its averages as a reference
    results[REFERENCE] = reference_metrics(single_feats, multi_feats)

    print(format_table(results))
    print(f'{REFERENCE}: a student that outputs the teacher\'s mean tokens '
          '(per grid position) and mean relation map; a uniform relation '
          f'gives relation KL {results[REFERENCE]["relation_kl_uniform"]:.4f}.'
          '\ncentred: cosine after subtracting each side\'s mean over the '
          'images (0 for any image-independent student).')
    out = dict(
        config=args.config,
        data_root=data_root,
        view_size=list(settings['size']),
        multi_person_size=list(settings['multi_person'].get('size', [])),
        results=results)
    write_json(args.out, out, indent=2)
    print(f'written {args.out}')


if __name__ == '__main__':
    silence_stack_deprecations()
    main()
