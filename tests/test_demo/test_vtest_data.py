"""The vtest.avi -> LUPerson-style converter (vtest_data).

The logic (NMS, filtering, crops, track linking, split by time, person-free
backgrounds, determinism) is tested on a small synthetic video with a stub
detector: HOG does not fire on drawn blobs. A real run on vtest.avi needs
the video in one of the standard places (tests never download it: run
``python demo/vtest_to_lup.py`` once to fetch it into
data/opencv-doc/).
"""
import hashlib
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import vtest_data as vtest
from mmdpal_testing import REPO, run_tool
from vtest_data import (VTestNotFoundError, background_boxes, box_iou,
                        cut_crops, fetch_vtest, filter_boxes, find_vtest_video,
                        link_tracks, make_vtest_lup, median_background, nms,
                        person_crop_box, split_by_time, vtest_candidates)

from mmdpal.datasets import CopyPasteMultiPerson, LUPersonDataset

# --------------------------------------------------------------------------
# a synthetic static-camera video: 30 frames, 240x320, three "persons"
# --------------------------------------------------------------------------
H, W, NUM_FRAMES = 240, 320, 30
PERSON_W, PERSON_H = 24, 64
STATIC_FP = (250., 20., 290., 100., 2.0)  # a "detection" on static scenery


def person_positions(idx):
    """Top-left corners of the persons visible in frame ``idx``:
    A walks right in frames 0-15, B walks left all along, C appears in the
    held-out part (frames 24-29)."""
    people = {}
    if idx <= 15:
        people['A'] = (10 + 4 * idx, 20)
    people['B'] = (280 - 4 * idx, 140)
    if idx >= 24:
        people['C'] = (150 + 4 * (idx - 24), 30)
    return people


def person_boxes(idx):
    """Detector-style boxes (person plus an 8 px margin, 40x80)."""
    return {
        k: (x - 8., y - 8., x + PERSON_W + 8., y + PERSON_H + 8.)
        for k, (x, y) in person_positions(idx).items()
    }


def stub_detector(frame, idx):
    """The true boxes (score 1) plus a false positive on static scenery."""
    boxes = [(*b, 1.0) for b in person_boxes(idx).values()]
    return np.array(boxes + [STATIC_FP])


def write_video(path):
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(
        rng.integers(90, 200, (H, W, 3), dtype=np.uint8), (31, 31), 0)
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10, (W, H))
    assert writer.isOpened()
    for idx in range(NUM_FRAMES):
        frame = background.copy()
        for k, (x, y) in person_positions(idx).items():
            colour = dict(A=(20, 20, 160), B=(160, 20, 20), C=(20, 140, 20))
            cv2.rectangle(frame, (x, y), (x + PERSON_W - 1, y + PERSON_H - 1),
                          colour[k], -1)
        writer.write(frame)
    writer.release()
    return str(path)


@pytest.fixture(scope='module')
def synthetic_video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp('video') / 'synthetic.avi')


def tree_md5(folder):
    """{relative path: md5} of every file under ``folder``."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = osp.join(root, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path,
                                folder)] = hashlib.md5(f.read()).hexdigest()
    return out


# --------------------------------------------------------------------------
# finding the video
# --------------------------------------------------------------------------
def test_missing_video_is_a_one_line_error(tmp_path, monkeypatch):
    missing = str(tmp_path / 'no_such.avi')
    with pytest.raises(VTestNotFoundError, match='no_such.avi') as e:
        find_vtest_video(missing)
    assert '\n' not in str(e.value) and '--video' in str(e.value)

    # nowhere in the standard places, no download: how to get it
    monkeypatch.setattr(vtest, 'vtest_candidates', lambda d: [missing])
    with pytest.raises(VTestNotFoundError) as e:
        find_vtest_video(cache_dir=str(tmp_path))
    assert '\n' not in str(e.value)
    assert 'apt-get download opencv-doc' in str(e.value)
    assert 'dpkg-deb -x' in str(e.value)

    # with download: the fetcher is asked, with the cache folder
    asked = []
    got = find_vtest_video(
        cache_dir=str(tmp_path / 'cache'),
        download=True,
        fetch=lambda d: asked.append(d) or 'fetched.avi')
    assert got == 'fetched.avi' and asked == [str(tmp_path / 'cache')]

    # no apt: the real fetcher fails with one line
    with pytest.raises(VTestNotFoundError, match='apt-get download') as e:
        fetch_vtest(str(tmp_path / 'cache'), apt_get='/no/such/apt-get')
    assert '\n' not in str(e.value)
    assert not osp.exists(tmp_path / 'cache')


def test_standard_places():
    places = vtest_candidates('data/opencv-doc')
    assert places[0] == '/usr/share/doc/opencv-doc/examples/data/vtest.avi'
    assert places[1] == ('data/opencv-doc/usr/share/doc/opencv-doc/examples/'
                         'data/vtest.avi')


def test_cli_missing_video(tmp_path):
    res = run_tool([
        'demo/vtest_to_lup.py', '--video',
        str(tmp_path / 'missing.avi'), '--out',
        str(tmp_path / 'out')
    ],
                   timeout=120)
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and 'missing.avi' in lines[0], res.stderr
    assert not osp.exists(tmp_path / 'out')


# --------------------------------------------------------------------------
# the pieces
# --------------------------------------------------------------------------
def test_nms_and_filter():
    boxes = np.array([
        [10, 10, 50, 90, 1.0],
        [12, 12, 52, 92, 2.0],  # same person, higher score: kept
        [0, 0, 100, 200, 0.5],  # a large window around it: contains it
        [200, 10, 240, 90, 0.8],
    ])
    kept = nms(boxes)
    assert kept[:, 4].tolist() == [2.0, 0.8]
    # the result does not depend on the input order
    np.testing.assert_array_equal(nms(boxes[::-1]), kept)

    frame = np.zeros((240, 320, 3), np.uint8)
    background = frame.copy()
    frame[20:100, 100:140] = 255  # something moved here
    frame[20:100, 0:30] = 255  # and here
    cand = np.array([
        [100, 20, 140, 100, 1.0],  # kept
        [100, 20, 140, 100, 0.1],  # low score
        [100, 50, 120, 90, 1.0],  # too small
        [300, 20, 340, 100, 1.0],  # half outside the frame
        [60, 20, 140, 100, 1.0],  # too wide
        [200, 20, 240, 100, 1.0],  # nothing moved: static false positive
        [-2, 20, 38, 100, 1.0],  # slightly outside: clipped
    ])
    out = filter_boxes(cand, frame, background)
    assert out.tolist() == [[100, 20, 140, 100, 1.0], [0, 20, 38, 100, 1.0]]
    # without a background the static one stays
    assert len(filter_boxes(cand, frame)) == 3


def test_link_tracks():
    a = [
        np.array([[0, 0, 40, 80], [100, 0, 140, 80]], float),
        np.array([[104, 0, 144, 80], [4, 0, 44, 80]], float),  # swapped
        np.zeros((0, 4)),  # both missed
        np.array([[12, 0, 52, 80]], float),
        np.array([[300, 0, 340, 80]], float)
    ]  # someone new
    ids = link_tracks(a, iou_thr=0.3, max_gap=2)
    assert [i.tolist() for i in ids] == [[0, 1], [1, 0], [], [0], [2]]
    # consecutive frames only: the missed frame breaks the track
    ids = link_tracks(a, iou_thr=0.3, max_gap=1)
    assert ids[3].tolist() == [2]


def test_crops_keep_the_person_aspect():
    frame = np.arange(
        240 * 320 * 3, dtype=np.uint32).reshape(240, 320, 3).astype(np.uint8)
    box = (100, 50, 140, 130)  # 40x80
    x1, y1, x2, y2 = person_crop_box(box, (256, 128), margin=0.05)
    assert (y2 - y1) / (x2 - x1) == pytest.approx(2, abs=0.05)
    assert x1 <= 100 and y1 <= 50 and x2 >= 140 and y2 >= 130
    wide = person_crop_box((0, 0, 100, 80), (256, 128), margin=0)
    assert (wide[2] - wide[0], wide[3] - wide[1]) == (100, 200)
    # near the border: padded, not shifted or squeezed
    crops, regions = cut_crops(frame, np.array([box, (-10, -5, 30, 75)]),
                               (128, 64))
    assert [c.shape for c in crops] == [(128, 64, 3)] * 2
    assert regions[1][0] < 0 and regions[1][1] < 0


def test_median_and_person_free_backgrounds():
    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    frames = []
    for i in range(9):
        f = background.copy()
        f[50:130, 20 + 30 * i:60 + 30 * i] = 0  # a moving "person"
        frames.append(f)
    np.testing.assert_array_equal(median_background(frames), background)

    frame = frames[0]
    person = np.array([[20, 50, 60, 130, 1.0]])
    wins = background_boxes(frame, person, size=96, stride=48)
    assert wins and box_iou(np.array(wins, float), person).max() == 0
    # a person the detector missed is caught by the background test
    missed = background_boxes(
        frame, np.zeros((0, 5)), size=96, stride=48, background=background)
    assert box_iou(np.array(missed, float), person).max() == 0
    assert len(background_boxes(frame, np.zeros((0, 5)), size=96,
                                stride=48)) > len(missed)


def test_split_by_time():
    splits = [
        split_by_time(i, 100, heldout_frac=0.2, gap_frames=10)
        for i in range(100)
    ]
    assert splits == ['train'] * 70 + ['gap'] * 10 + ['heldout'] * 20


# --------------------------------------------------------------------------
# the whole conversion
# --------------------------------------------------------------------------
def convert_synthetic(video, out):
    return make_vtest_lup(
        video,
        str(out),
        step=2,
        heldout_frac=0.2,
        gap_frames=4,
        crop_size=(128, 64),
        detector=stub_detector,
        bg_sizes=(96, ),
        bg_stride=48,
        frame_bg_frames=5,
        median_frames=29)


def test_synthetic_conversion(synthetic_video, tmp_path):
    summary = convert_synthetic(synthetic_video, tmp_path / 'a')
    out = tmp_path / 'a'
    meta = json.loads((out / 'meta.json').read_text())
    crops = meta['crops']
    # the static false positive is filtered out on every frame
    assert summary['raw_boxes'] == sum(
        len(person_boxes(i)) + 1 for i in range(0, NUM_FRAMES, 2))
    assert summary['boxes'] == len(crops) == sum(
        len(person_boxes(i)) for i in range(0, NUM_FRAMES, 2))
    # one track per person, the same id all along
    by_person = {}
    for rec in crops:
        truth = person_boxes(rec['frame'])
        name = max(
            truth,
            key=lambda k: box_iou(
                np.array([truth[k]]), np.array([rec['box']]))[0, 0])
        by_person.setdefault(name, set()).add(rec['track_id'])
    assert all(len(ids) == 1 for ids in by_person.values())
    assert len(set.union(*by_person.values())) == 3 == summary['tracks']
    # split by time: cut at frame 24, gap 20-23; B reaches the held-out
    # part, so its training crops are dropped too
    track_b, = by_person['B']
    for rec in crops:
        if rec['split'] == 'heldout':
            assert rec['frame'] >= 24
        elif rec['split'] == 'train':
            assert rec['frame'] < 20 and rec['track_id'] != track_b
        else:
            assert rec['split'] == 'dropped' and rec['file'] is None
    train = sorted(os.listdir(out / 'train'))
    heldout = sorted(os.listdir(out / 'heldout'))
    assert len(train) == summary['train'] == 8  # A, frames 0-14
    assert len(heldout) == summary['heldout'] == 6  # B and C, 24-28
    img = cv2.imread(str(out / 'train' / train[0]))
    assert img.shape == (128, 64, 3)
    # every crop has its person mask, aligned with it: the drawn person
    # (24 of the region's 42 columns, 64 of its 84 rows) is on, the sides off
    kept = [r for r in crops if r['file'] is not None]
    assert sorted(os.listdir(out / 'masks' / 'train')) == [
        n.replace('.jpg', '.png') for n in train
    ]
    for rec in kept:
        mask = cv2.imread(str(out / rec['mask']), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (128, 64) and mask.dtype == np.uint8
        assert mask[32:96, 24:40].min() == 255, rec['mask']
        assert mask[:, :6].max() == 0 and mask[:, -6:].max() == 0
    # backgrounds: the median (person-free) and frame windows that do not
    # touch any person
    bgs = meta['backgrounds']
    assert {b['source'] for b in bgs} == {'median', 'frame'}
    assert len(os.listdir(out / 'backgrounds')) == len(bgs)
    for b in bgs:
        if b['source'] == 'frame':
            truth = np.array(list(person_boxes(b['frame']).values()))
            assert box_iou(np.array([b['box']], float), truth).max() == 0
    median = cv2.imread(str(out / 'backgrounds' / 'median_full.jpg'))
    # no person colour left in the median
    assert (median.max(axis=2) - median.min(axis=2)).max() < 100
    # the folders load as LUPerson / copy-paste data
    ds = LUPersonDataset(
        data_root=str(out),
        data_prefix=dict(img_path='train'),
        pipeline=[],
        lazy_init=False)
    assert len(ds) == len(train)
    assert 'backgrounds=' in repr(
        CopyPasteMultiPerson(background_dir=str(out / 'backgrounds')))

    # deterministic: a second run gives byte-identical files
    convert_synthetic(synthetic_video, tmp_path / 'b')
    assert tree_md5(out) == tree_md5(tmp_path / 'b')
    # rerunning into the same folder replaces the previous output
    convert_synthetic(synthetic_video, out)
    assert tree_md5(out) == tree_md5(tmp_path / 'b')


def test_refuses_a_foreign_output_folder(synthetic_video, tmp_path):
    (tmp_path / 'mine.txt').write_text('not yours')
    with pytest.raises(FileExistsError, match='meta.json'):
        convert_synthetic(synthetic_video, tmp_path)
    assert (tmp_path / 'mine.txt').exists()


# --------------------------------------------------------------------------
# a real run on vtest.avi
# --------------------------------------------------------------------------
def local_vtest():
    """vtest.avi in a standard place, or None (never downloads)."""
    for path in vtest_candidates(osp.join(REPO, 'data', 'opencv-doc')):
        if osp.isfile(path):
            return path
    return None


@pytest.mark.slow
@pytest.mark.skipif(
    local_vtest() is None,
    reason='vtest.avi not available locally; fetch it with python '
    'demo/vtest_to_lup.py (apt-get download opencv-doc)')
def test_real_vtest(tmp_path):
    video = local_vtest()
    # every 10th frame (80) keeps the two runs short; the CLI default is 4
    summary = make_vtest_lup(video, str(tmp_path / 'a'), step=10)
    out = tmp_path / 'a'
    assert summary['frames'] == 795 and summary['sampled'] == 80
    assert summary['train'] >= 100, summary
    assert summary['heldout'] >= 10, summary
    train = os.listdir(out / 'train')
    heldout = os.listdir(out / 'heldout')
    assert len(train) == summary['train'] and len(
        heldout) == summary['heldout']
    backgrounds = os.listdir(out / 'backgrounds')
    assert len(backgrounds) == summary['backgrounds'] >= 10
    assert 'median_full.jpg' in backgrounds
    meta = json.loads((out / 'meta.json').read_text())
    cut = meta['split']['heldout_from_frame']
    for rec in meta['crops']:
        x1, y1, x2, y2 = rec['box']
        assert 1.6 <= (y2 - y1) / (x2 - x1) <= 2.6  # person-like boxes
        cx1, cy1, cx2, cy2 = rec['crop_box']
        assert (cy2 - cy1) / (cx2 - cx1) == pytest.approx(2, abs=0.05)
        if rec['split'] == 'heldout':
            assert rec['frame'] >= cut
        elif rec['split'] == 'train':
            assert rec['frame'] < meta['split']['train_before_frame']
    train_tracks = {
        r['track_id']
        for r in meta['crops'] if r['split'] == 'train'
    }
    assert not train_tracks & {
        r['track_id']
        for r in meta['crops'] if r['split'] == 'heldout'
    }
    for name in sorted(train)[:5] + sorted(heldout)[:5]:
        split = 'train' if name in train else 'heldout'
        assert cv2.imread(str(out / split / name)).shape == (256, 128, 3)

    make_vtest_lup(video, str(tmp_path / 'b'), step=10)
    assert tree_md5(out) == tree_md5(tmp_path / 'b')
