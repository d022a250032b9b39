"""Offline analysis of DPAL pretraining: what the student learnt from the
teacher (see ``tools/analysis_tools/visualize_patterns.py`` and
``tools/analysis_tools/eval_alignment.py``)."""
from .patterns import (Features, alignment_metrics, build_model,
                       centred_cosine, compute_features, data_root_of,
                       heldout_crops, load_view, make_multi_person,
                       multi_person_pairs, pca_2d, pca_project, pca_rgb,
                       read_meta, reference_metrics, select_crops,
                       select_tracks, to_inputs, view_settings)

__all__ = [
    'Features', 'alignment_metrics', 'build_model', 'centred_cosine',
    'compute_features', 'data_root_of', 'heldout_crops', 'load_view',
    'make_multi_person', 'multi_person_pairs', 'pca_2d', 'pca_project',
    'pca_rgb', 'read_meta', 'reference_metrics', 'select_crops',
    'select_tracks', 'to_inputs', 'view_settings'
]
