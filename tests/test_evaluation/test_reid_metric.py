"""mmdpal.ReIDMetric: mAP and CMC with the Market/MSMT protocol, checked on a
hand-worked example (camera filtering, a tie, queries without a valid
match), on a perfect ranking and on a control."""
import numpy as np
import pytest
import torch
from mmdet.structures import ReIDDataSample
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

import mmdpal  # noqa: F401
from mmdpal.evaluation import reid_ranking_scores
from mmdpal.registry import METRICS

# The gallery: (person id, camera)
GALLERY = [(1, 1), (2, 2), (1, 2), (3, 1), (1, 3)]
# q0 (id 1, camera 1): g0 is the same id and camera, left out; then g1
#   (wrong, 0.1), g2 and g3 tied at 0.5 (right, wrong: gallery order),
#   g4 (right, 0.7). Ranked [0, 1, 0, 1]: first hit at rank 2,
#   AP = (1/2 + 2/4) / 2 = 0.5.
# q1 (id 2, camera 1): g1 first: AP 1.
# q2 (id 4): no image of its identity in the gallery: no valid match.
# q3 (id 3, camera 1): its only gallery image (g3) is from its own camera:
#   no valid match.
# Over the two valid queries: mAP 0.75, Rank-1 0.5, Rank-2 and up 1.0.
QUERIES = [(1, 1), (2, 1), (4, 1), (3, 1)]
DIST = np.array([
    [0.0, 0.1, 0.5, 0.5, 0.7],
    [0.9, 0.0, 0.8, 0.6, 0.7],
    [0.1, 0.2, 0.3, 0.4, 0.5],
    [0.2, 0.3, 0.4, 0.0, 0.5],
])


def test_ranking_scores_hand_worked():
    q, g = np.array(QUERIES), np.array(GALLERY)
    scores = reid_ranking_scores(
        DIST, q[:, 0], g[:, 0], q[:, 1], g[:, 1], max_rank=5)
    assert scores['num_valid'] == 2 and scores['num_invalid'] == 2
    assert scores['mAP'] == pytest.approx(0.75)
    assert scores['cmc'].tolist() == [0.5, 1.0, 1.0, 1.0, 1.0]


def test_ranking_scores_same_camera_images_are_not_counted():
    """Without the camera rule, q0's g0 would be a rank-1 hit: with it, the
    scores of q0 alone are those of the hand-worked ranking."""
    q, g = np.array(QUERIES[:1]), np.array(GALLERY)
    scores = reid_ranking_scores(
        DIST[:1], q[:, 0], g[:, 0], q[:, 1], g[:, 1], max_rank=1)
    assert scores['mAP'] == pytest.approx(0.5)
    assert scores['cmc'].tolist() == [0.0]
    other_camera = q[:, 1] + 10
    scores = reid_ranking_scores(
        DIST[:1], q[:, 0], g[:, 0], other_camera, g[:, 1], max_rank=1)
    assert scores['cmc'].tolist() == [1.0]
    assert scores['mAP'] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)


def build_metric(**kwargs):
    init_default_scope('mmdpal')
    return METRICS.build(dict(type='ReIDMetric', **kwargs))


def reid_sample(feature, pid, camera, is_query, kind='mmdet'):
    """A data sample as the runner hands it to the metric (to_dict())."""
    if kind == 'mmdet':
        sample = ReIDDataSample()
        sample.set_gt_label(pid)
    else:
        sample = DataSample().set_gt_label(pid)
    sample.set_metainfo(dict(camera_id=camera, is_query=is_query))
    sample.pred_feature = torch.as_tensor(feature, dtype=torch.float32)
    return sample.to_dict()


def evaluate(metric, samples, batch=3):
    for i in range(0, len(samples), batch):
        metric.process({}, samples[i:i + batch])
    return metric.evaluate(len(samples))


def unit(angle_cos, axis):
    """A unit vector at cosine ``angle_cos`` from e0, towards ``axis``."""
    v = np.zeros(4)
    v[0], v[axis] = angle_cos, np.sqrt(1 - angle_cos**2)
    return v


@pytest.mark.parametrize('kind', ['mmdet', 'mmpretrain'])
def test_metric_hand_worked_from_features(kind):
    """The hand-worked ranking of q0 and q1 from embeddings (cosine
    distance 1 - cos): the metric reports mAP 0.75, R1 0.5, R5 1."""
    e0 = unit(1.0, 1)
    gallery = [e0, unit(0.9, 1), unit(0.5, 2), unit(0.5, 2), unit(0.3, 3)]
    queries = [e0, unit(0.9, 1), unit(0.2, 3), unit(0.1, 2)]
    samples = [
        reid_sample(f, pid, cam, True, kind)
        for f, (pid, cam) in zip(queries, QUERIES)
    ] + [
        reid_sample(f, pid, cam, False, kind)
        for f, (pid, cam) in zip(gallery, GALLERY)
    ]
    metrics = evaluate(build_metric(ranks=(1, 2, 5)), samples)
    assert metrics == pytest.approx({
        'reid/mAP': 0.75,
        'reid/R1': 0.5,
        'reid/R2': 1.0,
        'reid/R5': 1.0
    })


def identity_samples(features, pids, cams, num_query):
    return [
        reid_sample(f, p, c, i < num_query)
        for i, (f, p, c) in enumerate(zip(features, pids, cams))
    ]


def test_metric_perfect_ranking_scores_one_and_a_control_lower():
    rng = np.random.default_rng(0)
    num_ids = 6
    # per identity: one query (camera 1) and three gallery images (cameras
    # 1, 2, 3), plus two distractors (id 0)
    pids = list(range(1, num_ids + 1)) + [
        p for p in range(1, num_ids + 1) for _ in range(3)
    ] + [0, 0]
    cams = [1] * num_ids + [1, 2, 3] * num_ids + [2, 3]
    perfect = np.eye(num_ids + 1)[pids] + 0.01 * rng.random(
        (len(pids), num_ids + 1))
    metrics = evaluate(build_metric(),
                       identity_samples(perfect, pids, cams, num_ids))
    assert metrics == pytest.approx({
        'reid/mAP': 1.0,
        'reid/R1': 1.0,
        'reid/R5': 1.0,
        'reid/R10': 1.0
    })
    control = rng.standard_normal((len(pids), num_ids + 1))
    metrics = evaluate(build_metric(),
                       identity_samples(control, pids, cams, num_ids))
    assert metrics['reid/mAP'] < 0.7 and metrics['reid/R1'] < 1.0


def test_metric_names_what_a_sample_lacks():
    sample = reid_sample(np.ones(4), 1, 1, True)
    del sample['camera_id']
    with pytest.raises(KeyError, match='camera_id'):
        build_metric().process({}, [sample])


def test_metric_without_valid_query_fails_clearly():
    samples = [
        reid_sample(np.ones(4), 1, 1, True),
        reid_sample(np.ones(4), 1, 1, False),
        reid_sample(np.ones(4), 2, 2, False)
    ]
    with pytest.raises(ValueError, match='none of the 1 queries'):
        evaluate(build_metric(), samples)
    with pytest.raises(ValueError, match='0 gallery'):
        evaluate(build_metric(), samples[:1])
