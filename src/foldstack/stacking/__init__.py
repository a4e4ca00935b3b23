"""Level 2 on the level-1 folds: blends, meta-models and threshold search. numpy/scipy/sklearn/xgboost only
(no torch), so stacking runs where no training stack is installed."""
from .blend import (BlendModel, blend, blend_cv, fit_weights, geometric_blend, mean_blend, rank_blend,
                    weighted_blend)
from .level import fit_level, uses_meta_features
from .meta import MetaModel, fit_meta, level_features, stack_cv
from .thresholds import level_thresholds, read_thresholds, search_thresholds, thresholds_for, write_thresholds

__all__ = ["BlendModel", "blend", "blend_cv", "fit_weights", "geometric_blend", "mean_blend", "rank_blend",
           "weighted_blend", "fit_level", "uses_meta_features", "MetaModel", "fit_meta", "level_features", "stack_cv",
           "level_thresholds", "search_thresholds", "thresholds_for", "read_thresholds", "write_thresholds"]
