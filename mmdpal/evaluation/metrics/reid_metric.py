"""Image-to-image person ReID metric: mAP and CMC (Market-1501 / MSMT17)."""
from typing import Dict, List, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from mmdpal.registry import METRICS


def reid_ranking_scores(dist: np.ndarray, query_pids: np.ndarray,
                        gallery_pids: np.ndarray, query_cams: np.ndarray,
                        gallery_cams: np.ndarray,
                        max_rank: int) -> Dict[str, object]:
    """mAP and the CMC curve of a query-gallery distance matrix, with the
    Market-1501 / MSMT17 protocol (Zheng et al., ICCV 2015).

    For each query, the gallery images of the same identity *and* the same
    camera are left out (they are too easy); the rest is ranked by distance,
    ties in gallery order (a stable sort). A query left with no image of its
    identity has no valid match: it is counted in ``num_invalid`` and left
    out of both scores, as the reference code does.

    Returns:
        dict: ``mAP`` (float), ``cmc`` (array of ``max_rank`` hit rates: the
        fraction of valid queries with a true match within the first k),
        ``num_valid`` and ``num_invalid`` (int).
    """
    cmc_sum = np.zeros(max_rank)
    aps = []
    for i in range(dist.shape[0]):
        order = np.argsort(dist[i], kind='stable')
        same_id = gallery_pids[order] == query_pids[i]
        same_cam = gallery_cams[order] == query_cams[i]
        matches = same_id[~(same_id & same_cam)]
        if not matches.any():
            continue
        first_hit = int(np.argmax(matches))
        cmc_sum[first_hit:] += 1
        # AP: precision at the rank of each true match, averaged
        hits = np.cumsum(matches)
        ranks = np.arange(1, len(matches) + 1)
        aps.append(float((hits / ranks)[matches].mean()))
    num_valid = len(aps)
    return dict(
        mAP=float(np.mean(aps)) if aps else float('nan'),
        cmc=cmc_sum / max(num_valid, 1),
        num_valid=num_valid,
        num_invalid=dist.shape[0] - num_valid)


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
    scored by :func:`reid_ranking_scores` (the Market/MSMT protocol).

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
        scores = reid_ranking_scores(
            self._cosine_distance(query, gallery),
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

    @staticmethod
    def _cosine_distance(query: List[dict], gallery: List[dict]) -> np.ndarray:
        q = torch.nn.functional.normalize(
            torch.stack([r['feature'].reshape(-1) for r in query]), dim=1)
        g = torch.nn.functional.normalize(
            torch.stack([r['feature'].reshape(-1) for r in gallery]), dim=1)
        return (1 - q @ g.t()).numpy()
