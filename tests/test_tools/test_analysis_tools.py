"""tools/analysis_tools/visualize_patterns.py and eval_alignment.py (and
their shared module pattern_utils) on a tiny throw-away
LUPerson-like folder with a tiny random teacher."""
import json
import math
import os.path as osp

import numpy as np
import pytest
from mmdpal_testing import (TINY_CONFIG, run_tool, save_tiny_teacher,
                            write_backgrounds, write_person_images)

METRICS = ('global_cos', 'global_cos_centred', 'local_cos', 'local_cos_shape',
           'local_cos_centred', 'relation_kl')
REFERENCE = 'mean teacher (ref)'
REFERENCE_METRICS = ('global_cos', 'local_cos', 'local_cos_shape',
                     'relation_kl', 'relation_kl_uniform')


def make_tiny_lup(root):
    """A folder like data/vtest_lup/: train/ (16 crops), heldout/ (12 crops
    of 4 tracks), their masks/, backgrounds/ and meta.json, plus a tiny
    teacher."""
    crops = []
    train = write_person_images(
        str(root / 'train'), 16, seed=0, mask_folder=str(root / 'masks/train'))
    for i, path in enumerate(train):
        crops.append(
            dict(
                frame=4 * i,
                track_id=100 + i % 5,
                split='train',
                box=[0, 0, 48, 96],
                file='train/' + osp.basename(path),
                mask='masks/train/' + osp.basename(path)[:-4] + '.png'))
    heldout = write_person_images(
        str(root / 'heldout'),
        12,
        seed=3,
        mask_folder=str(root / 'masks/heldout'))
    for i, path in enumerate(heldout):
        crops.append(
            dict(
                frame=200 + 4 * (i // 4),
                track_id=i % 4,
                split='heldout',
                box=[0, 0, 48, 96],
                file='heldout/' + osp.basename(path),
                mask='masks/heldout/' + osp.basename(path)[:-4] + '.png'))
    write_backgrounds(str(root / 'backgrounds'))
    meta = dict(
        video='synthetic',
        crops=crops,
        counts=dict(train=16, heldout=12),
        backgrounds=[])
    with open(root / 'meta.json', 'w') as f:
        json.dump(meta, f)
    save_tiny_teacher(str(root / 'teacher.pth'))
    return root


def write_tiny_config(path, data_root):
    """tests/data/tiny_dpal.py pointed at ``data_root``."""
    text = f"""_base_ = {TINY_CONFIG!r}
data_root = {str(data_root) + '/'!r}
model = dict(teacher=dict(checkpoint=data_root + 'teacher.pth'))
global_view = [
    dict(type='RandomResizedCrop', scale=(64, 32), crop_ratio_range=(0.8, 1.0),
         aspect_ratio_range=(0.4, 0.6)),
    dict(type='RandomFlip', prob=0.5),
]
local_view = [
    dict(type='RandomResizedCrop', scale=(32, 24),
         crop_ratio_range=(0.05, 0.8), aspect_ratio_range=(0.4, 0.6)),
]
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        data_prefix=dict(img_path='train/'),
        pipeline=[
            dict(type='LoadPersonImage'),
            dict(type='MultiView', num_views=[1, 2],
                 transforms=[global_view, local_view]),
            dict(type='CopyPasteMultiPerson',
                 background_dir=data_root + 'backgrounds/',
                 size=(64, 64), person_size=(32, 24)),
            dict(type='PackInputs',
                 algorithm_keys=['person_boxes', 'person_masks']),
        ]))
"""
    path.write_text(text)
    return str(path)


def check_ok(result):
    assert result.returncode == 0, result.stdout[-3000:] + \
        result.stderr[-5000:]


def test_selection_is_deterministic_and_by_identity(tmp_path):
    from pattern_utils import (heldout_crops, multi_person_pairs, pca_rgb,
                               select_crops, select_tracks)
    root = make_tiny_lup(tmp_path)
    crops = heldout_crops(str(root))
    assert len(crops) == 12 and all(c['split'] == 'heldout' for c in crops)
    rows = select_crops(crops, 3)
    assert len({c['track_id'] for c in rows}) == 3
    assert select_crops(crops, 3) == rows
    tracks = select_tracks(crops, num_tracks=4, per_track=2)
    assert [len(cs) for _, cs in tracks] == [2, 2, 2, 2]
    assert all(c['track_id'] == t for t, cs in tracks for c in cs)
    pairs = multi_person_pairs(crops)
    assert len(pairs) == 6
    assert all(a['track_id'] != b['track_id'] for a, b in pairs)

    rgb = pca_rgb(
        np.random.default_rng(0).normal(size=(8, 16)), (4, 2),
        out_size=(64, 32))
    assert rgb.shape == (64, 32, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert np.all(rgb[:16, :16] == rgb[0, 0])  # nearest upsampling


def test_metrics_of_known_students():
    import torch
    from pattern_utils import Features, alignment_metrics, reference_metrics
    g = torch.Generator().manual_seed(0)
    N, L, C = 6, 8, 5
    t_cls, t_patch = torch.randn(
        N, C, generator=g), torch.randn(
            N, L, C, generator=g)
    relation = torch.softmax(torch.randn(N, L, L, generator=g), dim=-1)

    def feats(d_cls, d_patch):
        return Features(
            student_cls=d_cls,
            student_patches=d_patch,
            decoded_cls=d_cls,
            decoded_patches=d_patch,
            teacher_cls=t_cls,
            teacher_patches=t_patch,
            shape_mask=torch.rand(N, L, generator=g),
            relation=relation,
            grid=(4, 2))

    perfect = alignment_metrics(feats(t_cls, t_patch), feats(t_cls, t_patch))
    for key in ('global_cos', 'global_cos_centred', 'local_cos',
                'local_cos_shape', 'local_cos_centred'):
        assert perfect[key] == pytest.approx(1, abs=1e-5), key
    mean = feats(t_cls.mean(0).expand(N, C), t_patch.mean(0).expand(N, L, C))
    m = alignment_metrics(mean, mean)
    ref = reference_metrics(mean, mean)
    assert m['global_cos'] == pytest.approx(ref['global_cos'])
    assert m['local_cos'] == pytest.approx(ref['local_cos'])
    assert abs(m['global_cos_centred']) < 1e-4
    assert abs(m['local_cos_centred']) < 1e-4
    assert 0 < ref['relation_kl'] < ref['relation_kl_uniform']


def test_missing_data_names_the_converter(tmp_path):
    from mask_probe import read_split
    from pattern_utils import heldout_crops
    with pytest.raises(FileNotFoundError, match='vtest_to_lup.py'):
        heldout_crops(str(tmp_path / 'nowhere'))
    with pytest.raises(FileNotFoundError, match='meta.json'):
        heldout_crops(str(tmp_path))
    with pytest.raises(FileNotFoundError, match='vtest_to_lup.py --out'):
        read_split(str(tmp_path), 'heldout', (64, 32))
    # a folder of an older vtest_to_lup.py: no masks listed
    (tmp_path / 'meta.json').write_text(
        json.dumps(dict(crops=[dict(split='heldout', file='heldout/a.jpg')])))
    with pytest.raises(KeyError, match='lists no person masks'):
        read_split(str(tmp_path), 'heldout', (64, 32))


@pytest.mark.slow
def test_visualize_and_eval_alignment(tmp_path):
    root = make_tiny_lup(tmp_path / 'lup')
    config = write_tiny_config(tmp_path / 'tiny_patterns.py', root)
    work = tmp_path / 'work'

    # a student trained a few steps toward the teacher (1 epoch = 4 iters)
    check_ok(
        run_tool([
            'tools/train.py', config, '--work-dir',
            str(work), '--cfg-options', 'train_cfg.max_epochs=1'
        ],
                 timeout=300))
    ckpt = str(work / 'epoch_1.pth')
    assert osp.isfile(ckpt)

    # the picture
    png = tmp_path / 'patterns.png'
    check_ok(
        run_tool([
            'tools/analysis_tools/visualize_patterns.py', config, ckpt,
            '--out',
            str(png), '--num-crops', '3', '--num-tracks', '4', '--per-track',
            '3'
        ],
                 timeout=300))
    import matplotlib.image as mpimg
    img = mpimg.imread(str(png))  # float in [0, 1], (H, W, 4)
    h, w = img.shape[:2]
    assert 500 <= w <= 1200 and 800 <= h <= 2500, (h, w)
    rgb = img[..., :3]
    assert rgb.std() > 0.05
    assert len(np.unique((rgb * 255).round().reshape(-1, 3), axis=0)) > 200

    # the same checkpoint before and after: identical numbers
    same = tmp_path / 'same.json'
    check_ok(
        run_tool([
            'tools/analysis_tools/eval_alignment.py', config, ckpt, '--before',
            ckpt, '--out',
            str(same)
        ],
                 timeout=300))
    res = json.loads(same.read_text())['results']
    assert set(res) == {'before', 'after', REFERENCE}
    for key in METRICS:
        assert math.isfinite(res['after'][key])
        assert res['before'][key] == res['after'][key], key

    # init vs trained (+ a baseline slot): training moved toward the teacher
    learnt = tmp_path / 'learnt.json'
    out = run_tool([
        'tools/analysis_tools/eval_alignment.py', config, ckpt, '--baseline',
        ckpt, '--out',
        str(learnt)
    ],
                   timeout=300)
    check_ok(out)
    assert 'global cos' in out.stdout and 'baseline' in out.stdout
    res = json.loads(learnt.read_text())['results']
    assert set(res) == {'before', 'after', 'baseline', REFERENCE}
    assert res['before']['num_images'] == 12
    assert res['before']['num_multi_images'] == 6
    for name in ('before', 'after', 'baseline'):
        for key in METRICS:
            assert math.isfinite(res[name][key]), (name, key)
    for key in REFERENCE_METRICS:
        assert math.isfinite(res[REFERENCE][key]), key
    assert res['after']['global_cos'] > res['before']['global_cos'] + 0.05
    assert res['baseline'] == res['after']

    # the person-mask probe: the same student twice scores the same on
    # every held-out crop, with a zero paired difference
    probe = tmp_path / 'probe.json'
    out = run_tool([
        'tools/analysis_tools/mask_probe.py', config, '--data-root',
        str(root), '--size', '64', '32', '--model', 'init', '--model',
        f'trained={ckpt}', '--model', f'again={ckpt}', '--model', 'teacher',
        '--reps', '200', '--out',
        str(probe)
    ],
                   timeout=300)
    check_ok(out)
    assert 'Person-mask IoU on 12 held-out crops' in out.stdout
    res = json.loads(probe.read_text())
    assert (res['train_images'], res['test_images']) == (16, 12)
    assert res['grid'] == [
        8, 4
    ] and res['reference'] == ('student at initialisation')
    models = res['models']
    assert list(models) == [
        'student at initialisation', 'trained', 'again', 'teacher',
        'position prior (no image)'
    ]
    assert models['trained']['per_image'] == models['again']['per_image']
    # each network's own tokens: the student's are not the teacher's
    assert models['trained']['per_image'] != models['teacher']['per_image']
    for name, m in models.items():
        assert len(m['per_image']) == 12
        assert m['iou']['low'] <= m['iou']['mean'] <= m['iou']['high'], name
        assert 0.0 <= m['iou']['mean'] <= 1.0
