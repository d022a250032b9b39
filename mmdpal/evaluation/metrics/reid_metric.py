"""Image-to-image person ReID metric: mAP and CMC (Market-1501 / MSMT17)."""
from typing import Dict, List, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from mmdpal.registry import METRICS

# Query x gallery elements per chunk of distances: MSMT17's 11,659 x 82,161
# matrix is 3.8 GB in float32; 2**21 elements (25 queries of MSMT17 at a
# time) keep the ranking's working arrays near 100 MB.
CHUNK_ELEMENTS = 2**21


def reid_ranking_scores(dist, query_pids: np.ndarray, gallery_pids: np.ndarray,
                        query_cams: np.ndarray, gallery_cams: np.ndarray,
                        max_rank: int) -> Dict[str, object]:
    """mAP and the CMC curve of a query-gallery distance matrix, with the
    Market-1501 / MSMT17 protocol (Zheng et al., ICCV 2015).

    For each query, the gallery images of the same identity *and* the same
    camera are left out (they are too easy); the rest is ranked by distance,
    ties in gallery order (a stable sort). A query left with no image of its
    identity has no valid match: it is counted in ``num_invalid`` and left
    out of both scores, as the reference code does.

    Args:
        dist (ndarray | Tensor): (Q, G) distances.

    Returns:
        dict: ``mAP`` (float), ``cmc`` (array of ``max_rank`` hit rates: the
        fraction of valid queries with a true match within the first k),
        ``num_valid`` and ``num_invalid`` (int).
    """
    dist = torch.as_tensor(dist)
    totals = _RankingTotals(max_rank)
    rows = max(1, CHUNK_ELEMENTS // max(dist.shape[1], 1))
    labels = _labels(query_pids, gallery_pids, query_cams, gallery_cams)
    for start in range(0, dist.shape[0], rows):
        totals.add(dist[start:start + rows], *labels, start)
    return totals.scores()


def cosine_ranking_scores(
        query: torch.Tensor,
        gallery: torch.Tensor,
        query_pids: np.ndarray,
        gallery_pids: np.ndarray,
        query_cams: np.ndarray,
        gallery_cams: np.ndarray,
        max_rank: int,
        chunk_elements: int = CHUNK_ELEMENTS) -> Dict[str, object]:
    """:func:`reid_ranking_scores` of the cosine distances of two sets of
    embeddings, computed a chunk of queries at a time: the Q x G matrix is
    never held (MSMT17: 11,659 x 82,161 = 3.8 GB in float32).

    Args:
        query (Tensor): (Q, D) embeddings.
        gallery (Tensor): (G, D) embeddings.
        chunk_elements (int): Distances per chunk (rows = this // G).

    Returns:
        dict: As :func:`reid_ranking_scores`.
    """
    q = torch.nn.functional.normalize(query.float(), dim=1)
    g = torch.nn.functional.normalize(gallery.float(), dim=1)
    totals = _RankingTotals(max_rank)
    rows = max(1, chunk_elements // max(g.shape[0], 1))
    labels = _labels(query_pids, gallery_pids, query_cams, gallery_cams)
    g_t = g.t()
    for start in range(0, q.shape[0], rows):
        totals.add(1 - q[start:start + rows] @ g_t, *labels, start)
    return totals.scores()


def _labels(query_pids, gallery_pids, query_cams, gallery_cams):
    return tuple(
        torch.as_tensor(np.asarray(a).astype(np.int64))
        for a in (query_pids, gallery_pids, query_cams, gallery_cams))


class _RankingTotals:
    """Sums of the per-query AP and CMC hits over chunks of queries."""

    def __init__(self, max_rank: int) -> None:
        self.max_rank = max_rank
        self.cmc_sum = np.zeros(max_rank)
        self.ap_sum = 0.0
        self.num_valid = 0
        self.num_queries = 0

    def add(self, dist: torch.Tensor, query_pids: torch.Tensor,
            gallery_pids: torch.Tensor, query_cams: torch.Tensor,
            gallery_cams: torch.Tensor, start: int) -> None:
        """Rank the queries ``start .. start + len(dist)``.

        Only the sort and the identity test touch all Q x G entries; the
        rest works on the gallery images of each query's identity (a few
        dozen per query), in row-major order as ``nonzero`` gives them.
        """
        n, G = dist.shape
        qp = query_pids[start:start + n]
        qc = query_cams[start:start + n]
        order = torch.argsort(dist, dim=1, stable=True)
        rows, cols = (gallery_pids[order] == qp[:,
                                                None]).nonzero(as_tuple=True)
        # same identity and same camera: left out of the ranking ("junk")
        junk = gallery_cams[order[rows, cols]] == qc[rows]
        del order
        m_rows, m_cols = rows[~junk], cols[~junk]  # the true matches
        j_rows = rows[junk]
        # the rank of each match among the kept images (1-based): its
        # position minus the junk before it in its row
        junk_in_row = torch.bincount(j_rows, minlength=n)
        junk_before_row = torch.cumsum(junk_in_row, 0) - junk_in_row
        junk_before = torch.searchsorted(j_rows * G + cols[junk],
                                         m_rows * G + m_cols)
        rank = m_cols + 1 - (junk_before - junk_before_row[m_rows])
        # AP: precision at the rank of each true match, averaged
        matches_in_row = torch.bincount(m_rows, minlength=n)
        first_of_row = torch.cumsum(matches_in_row, 0) - matches_in_row
        hits = torch.arange(len(m_rows)) - first_of_row[m_rows] + 1
        precision_sum = torch.zeros(
            n, dtype=torch.float64).index_add_(0, m_rows,
                                               hits.double() / rank.double())
        valid = matches_in_row > 0
        self.ap_sum += float(
            (precision_sum[valid] / matches_in_row[valid]).sum())
        # CMC: the rank of the first true match
        first = rank[first_of_row[valid]] - 1
        for k in range(self.max_rank):
            self.cmc_sum[k] += int((first <= k).sum())
        self.num_valid += int(valid.sum())
        self.num_queries += n

    def scores(self) -> Dict[str, object]:
        return dict(
            mAP=self.ap_sum /
            self.num_valid if self.num_valid else float('nan'),
            cmc=self.cmc_sum / max(self.num_valid, 1),
            num_valid=self.num_valid,
            num_invalid=self.num_queries - self.num_valid)


def _label_value(label) -> int:
    """The identity of a data sample's ``gt_label``: mmdet's ReIDDataSample
    stores ``{'label': tensor([pid])}``, mmpretrain's DataSample the
    tensor."""
    if isinstance(label, dict):
        label = label['label']
    return int(torch.as_tensor(label).reshape(-1)[0])


@METRICS.register_module()
class ReIDMetric(BaseMetric):
    """mAP and CMC Rank-k of person re-identification.

    The model's outputs are the embeddings of a query set and a gallery set
    in one dataloader (e.g. ``Market1501(split='test')``): each data sample
    carries ``pred_feature`` (the embedding), ``gt_label`` (the person id)
    and, in its metainfo, ``camera_id`` and ``is_query``. Queries are ranked
    against the gallery by cosine distance (the L2-normalised Euclidean
    distance of SOLIDER/TransReID's evaluation, which ranks the same) and
    scored by :func:`reid_ranking_scores` (the Market/MSMT protocol), a
    chunk of queries at a time (:func:`cosine_ranking_scores`): MSMT17's
    11,659 x 82,161 distances (3.8 GB) are never held at once. Any batch
    size works: each data sample carries its own embedding.

    Args:
        ranks (Sequence[int]): The CMC ranks to report. Defaults to
            (1, 5, 10).
        collect_device (str): 'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): Defaults to 'reid': the keys are
            ``reid/mAP``, ``reid/R1``, ``reid/R5``, ``reid/R10`` (fractions).
    """
    default_prefix = 'reid'

    def __init__(self,
                 ranks: Sequence[int] = (1, 5, 10),
                 collect_device: str = 'cpu',
                 prefix: str = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not ranks or min(ranks) < 1:
            raise ValueError(
                f'ReIDMetric: ranks must be positive integers, got {ranks}')
        self.ranks = tuple(int(k) for k in ranks)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            missing = [
                k
                for k in ('pred_feature', 'gt_label', 'camera_id', 'is_query')
                if k not in sample
            ]
            if missing:
                raise KeyError(
                    f'ReIDMetric: a data sample of {sample.get("img_path")} '
                    f'lacks {missing}: use a ReID dataset (Market1501, '
                    'MSMT17) and pack camera_id and is_query as meta keys, '
                    "e.g. PackReIDInputs(meta_keys=('camera_id', "
                    "'is_query'))")
            self.results.append(
                dict(
                    feature=torch.as_tensor(
                        sample['pred_feature']).detach().float().cpu(),
                    pid=_label_value(sample['gt_label']),
                    camera_id=int(sample['camera_id']),
                    is_query=bool(sample['is_query'])))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        query = [r for r in results if r['is_query']]
        gallery = [r for r in results if not r['is_query']]
        if not query or not gallery:
            raise ValueError(
                f'ReIDMetric: got {len(query)} query and {len(gallery)} '
                'gallery images; evaluate on a split with both (e.g. '
                "Market1501(split='test'))")
        scores = cosine_ranking_scores(
            torch.stack([r['feature'].reshape(-1) for r in query]),
            torch.stack([r['feature'].reshape(-1) for r in gallery]),
            query_pids=np.array([r['pid'] for r in query]),
            gallery_pids=np.array([r['pid'] for r in gallery]),
            query_cams=np.array([r['camera_id'] for r in query]),
            gallery_cams=np.array([r['camera_id'] for r in gallery]),
            max_rank=max(self.ranks))
        if not scores['num_valid']:
            raise ValueError(
                f'ReIDMetric: none of the {len(query)} queries has a match '
                'of its identity from another camera in the gallery; check '
                'the query / gallery split')
        metrics = dict(mAP=scores['mAP'])
        for k in self.ranks:
            metrics[f'R{k}'] = float(scores['cmc'][k - 1])
        return metrics
