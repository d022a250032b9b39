from .mask_probe import (LinearProbe, bootstrap_ci, fit_linear_probe, mask_iou,
                         paired_difference_ci, patch_fractions, position_prior,
                         predict_fractions, run_mask_probe)
from .metrics import (PedestrianAttributeMetric, PositiveRatioBCEMetric,
                      ReIDMetric, cosine_ranking_scores,
                      pedestrian_attribute_scores, reid_ranking_scores)
from .reid_probe import (ReIDProbeLoop, embed_reid_batch, run_reid_probe,
                         student_embedding)

__all__ = [
    'PedestrianAttributeMetric', 'PositiveRatioBCEMetric', 'ReIDMetric',
    'pedestrian_attribute_scores', 'reid_ranking_scores',
    'cosine_ranking_scores', 'ReIDProbeLoop', 'embed_reid_batch',
    'run_reid_probe', 'student_embedding', 'LinearProbe', 'bootstrap_ci',
    'fit_linear_probe', 'mask_iou', 'paired_difference_ci', 'patch_fractions',
    'position_prior', 'predict_fractions', 'run_mask_probe'
]
