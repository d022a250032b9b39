from .attribute_metric import (PedestrianAttributeMetric,
                               PositiveRatioBCEMetric,
                               pedestrian_attribute_scores)
from .reid_metric import ReIDMetric, cosine_ranking_scores, reid_ranking_scores

__all__ = [
    'PedestrianAttributeMetric', 'PositiveRatioBCEMetric',
    'pedestrian_attribute_scores', 'ReIDMetric', 'reid_ranking_scores',
    'cosine_ranking_scores'
]
