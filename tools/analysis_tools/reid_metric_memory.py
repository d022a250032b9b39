"""Host memory and time of mmdpal's ReIDMetric on a synthetic query /
gallery set of a given size (default: MSMT17's 11,659 queries and 82,161
gallery images, 192-d embeddings).

    python tools/analysis_tools/reid_metric_memory.py [--queries 11659] \
        [--gallery 82161] [--dims 192] [--unchunked]

The embeddings are identity centres plus noise (4,101 identities, 15
cameras, as MSMT17's test split), handed to the metric as the runner does
(``process`` per batch of 256 data samples, then ``compute_metrics``). It
prints the process's peak resident memory (``VmHWM``), its resident
memory after the imports (torch, mmcv, mmengine, mmpretrain, mmdpal: there
in any process that evaluates) and before the ranking (plus the embeddings
and their data samples), and the seconds of the ranking. ``--unchunked``
ranks with the full Q x G distance matrix instead, as the metric did before
(for comparison: 3.8 GB of distances alone at MSMT17's size).
"""
import argparse
import json
import resource
import time

import numpy as np
import torch


def rss_mb() -> float:
    """The current resident memory of this process, in MB."""
    with open('/proc/self/statm') as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """The peak resident memory of this process image, in MB: ``VmHWM``
    (``ru_maxrss`` would keep the peak of a parent it was forked from
    across ``exec``, e.g. a test runner's)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_samples(num_query,
                      num_gallery,
                      dims,
                      num_ids=4101,
                      num_cams=15,
                      seed=0):
    """Data samples (as ``DataSample.to_dict()`` gives them to a metric)
    of identity-clustered embeddings: queries first, then the gallery."""
    rng = np.random.default_rng(seed)
    centres = torch.from_numpy(rng.standard_normal((num_ids, dims))).float()
    total = num_query + num_gallery
    pids = rng.integers(0, num_ids, total)
    cams = rng.integers(1, num_cams + 1, total)
    noise = torch.from_numpy(rng.standard_normal((total, dims))).float()
    feats = centres[pids] + 1.5 * noise
    for i in range(total):
        yield dict(
            pred_feature=feats[i].clone(),
            gt_label=torch.tensor([int(pids[i])]),
            camera_id=int(cams[i]),
            is_query=i < num_query)


def unchunked_scores(results, max_rank):
    """The metric before chunking: the whole cosine distance matrix, then
    one query at a time (kept here for the comparison)."""
    query = [r for r in results if r['is_query']]
    gallery = [r for r in results if not r['is_query']]
    q = torch.nn.functional.normalize(
        torch.stack([r['feature'].reshape(-1) for r in query]), dim=1)
    g = torch.nn.functional.normalize(
        torch.stack([r['feature'].reshape(-1) for r in gallery]), dim=1)
    dist = (1 - q @ g.t()).numpy()
    cmc_sum, aps = np.zeros(max_rank), []
    query_pids = np.array([r['pid'] for r in query])
    gallery_pids = np.array([r['pid'] for r in gallery])
    query_cams = np.array([r['camera_id'] for r in query])
    gallery_cams = np.array([r['camera_id'] for r in gallery])
    for i in range(dist.shape[0]):
        order = np.argsort(dist[i], kind='stable')
        same_id = gallery_pids[order] == query_pids[i]
        same_cam = gallery_cams[order] == query_cams[i]
        matches = same_id[~(same_id & same_cam)]
        if not matches.any():
            continue
        cmc_sum[int(np.argmax(matches)):] += 1
        hits = np.cumsum(matches)
        aps.append(
            float((hits / np.arange(1,
                                    len(matches) + 1))[matches].mean()))
    return dict(mAP=float(np.mean(aps)), R1=cmc_sum[0] / len(aps))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--queries', type=int, default=11659)
    parser.add_argument('--gallery', type=int, default=82161)
    parser.add_argument('--dims', type=int, default=192)
    parser.add_argument(
        '--unchunked',
        action='store_true',
        help='rank with the full distance matrix (the metric before)')
    args = parser.parse_args()

    import mmdpal  # noqa: F401
    from mmdpal.evaluation import ReIDMetric
    metric = ReIDMetric(ranks=(1, 5, 10))
    imports = rss_mb()
    batch = []
    for sample in synthetic_samples(args.queries, args.gallery, args.dims):
        batch.append(sample)
        if len(batch) == 256:
            metric.process({}, batch)
            batch = []
    if batch:
        metric.process({}, batch)
    before = rss_mb()
    start = time.perf_counter()
    if args.unchunked:
        scores = unchunked_scores(metric.results, 10)
    else:
        scores = metric.compute_metrics(metric.results)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            dict(
                queries=args.queries,
                gallery=args.gallery,
                ranking='unchunked' if args.unchunked else 'chunked',
                rss_after_imports_mb=round(imports, 1),
                rss_before_ranking_mb=round(before, 1),
                peak_rss_mb=round(peak_rss_mb(), 1),
                ranking_seconds=round(seconds, 1),
                metrics={
                    k: round(float(v), 6)
                    for k, v in scores.items()
                })))


if __name__ == '__main__':
    main()
