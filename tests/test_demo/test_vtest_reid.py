"""The held-out vtest crops as a Market-1501 folder for the ReID probe
(demo/vtest_data.py: write_reid_heldout): tracks are the identities, a
query and its gallery images are min_gap frames apart (times far apart
stand in for cameras), short tracks are left out; the folder reads as
Market1501's test split."""
import os

import numpy as np
from mmdpal_testing import REPO  # noqa: F401  (puts demo/ on the path)
from vtest_data import write_reid_heldout

from mmdpal.datasets import Market1501


def record(frame, track, split='heldout'):
    return dict(frame=frame, track_id=track, split=split)


def test_reid_heldout_layout(tmp_path):
    # track 3: frames 600-700 (long); track 8: 640-660 (short);
    # track 5: a training track
    records = [record(f, 3) for f in range(600, 701, 20)]
    records += [record(f, 8) for f in (640, 660)]
    records += [record(100, 5, 'train')]
    crops = [
        np.full((32, 16, 3), 10 * i, np.uint8) for i in range(len(records))
    ]
    counts = write_reid_heldout(str(tmp_path), records, crops, min_gap=50)
    assert counts == dict(min_gap=50, queries=1, gallery=3, unused=4)
    reid = tmp_path / 'heldout_reid'
    assert sorted(os.listdir(reid / 'query')) == ['0004_c1s1_000600_00.jpg']
    # 620 and 640 are closer than 50 frames to the query, track 8 is
    # shorter than 50 frames: not used
    assert sorted(os.listdir(reid / 'bounding_box_test')) == [
        '0004_c2s1_000660_00.jpg', '0004_c2s1_000680_00.jpg',
        '0004_c2s1_000700_00.jpg'
    ]
    dataset = Market1501(data_root=str(reid), split='test')
    got = [(int(d['gt_label']), d['camera_id'], d['is_query'])
           for d in dataset]
    assert got == [(4, 1, True)] + [(4, 2, False)] * 3
