"""Level 2 on the level-1 folds: blends, meta-models and threshold search. numpy/scipy/sklearn/xgboost only
(no torch), so stacking runs where no training stack is installed."""
from .blend import blend, blend_cv, fit_weights, geometric_blend, mean_blend, rank_blend, weighted_blend
from .meta import stack_cv
from .thresholds import read_thresholds, search_thresholds, thresholds_for, write_thresholds

__all__ = ["blend", "blend_cv", "fit_weights", "geometric_blend", "mean_blend", "rank_blend", "weighted_blend",
           "stack_cv", "search_thresholds", "thresholds_for", "read_thresholds", "write_thresholds"]
