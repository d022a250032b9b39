from .metrics import (PedestrianAttributeMetric, PositiveRatioBCEMetric,
                      ReIDMetric, cosine_ranking_scores,
                      pedestrian_attribute_scores, reid_ranking_scores)
from .reid_probe import (ReIDProbeLoop, embed_reid_batch, run_reid_probe,
                         student_embedding)

__all__ = [
    'PedestrianAttributeMetric', 'PositiveRatioBCEMetric', 'ReIDMetric',
    'pedestrian_attribute_scores', 'reid_ranking_scores',
    'cosine_ranking_scores', 'ReIDProbeLoop', 'embed_reid_batch',
    'run_reid_probe', 'student_embedding'
]
