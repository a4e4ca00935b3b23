"""Competition metrics on (N, K) target and probability matrices. scikit-learn is imported on first use: stages
that only read artifacts (make submit, an up-to-date make stack) start without it."""
import numpy as np

from .errors import PipelineError
from .regression import HIGHER_IS_BETTER as REGRESSION_HIGHER_IS_BETTER, regression_score, unscale
from .ordinal import graded, is_ordinal, quadratic_kappa
from .topk import comp_map_at_k, map_at_k
from .wide import is_wide, wide_score

HIGHER_IS_BETTER = {"roc_auc": True, "accuracy": True, "log_loss": False, "micro_f1": True, "macro_f1": True,
                    "qwk": True, "f_beta": True, "map_at_k": True, **REGRESSION_HIGHER_IS_BETTER}
EPS = 1e-7  # the floor of stacking/blend.py's smooth log-loss objective, not the metric's (LOG_LOSS_CLIP)
LABEL_METRICS = ("accuracy", "macro_f1", "f_beta", "qwk")  # single-label: from the argmax class alone
LOG_LOSS_CLIP = 1e-15  # Kaggle's log loss replaces p by max(min(p, 1 - 1e-15), 1e-15) (leaf-classification's text)


def clipped_log_loss(y: np.ndarray, p: np.ndarray, task: str) -> float:
    """Kaggle's log loss. Multiclass (leaf-classification, dog-breed-identification): each row rescaled to sum to
    one, clipped to [1e-15, 1 - 1e-15], the mean over rows of -log of the true class's probability. Binary
    (statoil, dogs-vs-cats) and multilabel: each cell's -[y log p + (1 - y) log(1 - p)] after the same clip,
    averaged. Multiclass reads only the row sums and the true class's column: no (N, K) copy."""
    if task == "multiclass":
        total = p.sum(1, dtype=np.float64)
        p_true = p[np.arange(len(p)), y.argmax(1)].astype(np.float64)
        # a row of zeros gives its true class no probability: the clip's floor, as p = 0 does
        p_true = np.divide(p_true, total, out=np.zeros_like(total), where=total > 0)
        return float(-np.log(np.clip(p_true, LOG_LOSS_CLIP, 1 - LOG_LOSS_CLIP)).mean())
    y, p = np.asarray(y, np.float64), np.clip(np.asarray(p, np.float64), LOG_LOSS_CLIP, 1 - LOG_LOSS_CLIP)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def mean_column_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Mean column-wise ROC AUC: each column's AUC of its own scores, as submitted (not renormalised), averaged
    (plant-pathology-2020: four one-hot class columns; ranzcr: 11 tags; binary: its one column). NaN when a column
    holds one class only: AUC is undefined there. The fold guard refuses such validation folds; on a test set the
    graders' roc_auc_score returns NaN (scikit-learn 1.9; older versions raise) and the submission gets no score."""
    from sklearn.metrics import roc_auc_score

    if any(len(np.unique(y[:, k])) < 2 for k in range(y.shape[1])):
        return float("nan")
    return float(np.mean([roc_auc_score(y[:, k], p[:, k]) for k in range(y.shape[1])]))


def hard_predictions(p: np.ndarray, task: str, threshold=0.5) -> np.ndarray:
    """0/1 uint8 matrix (imet's 142k x 3,474: 0.5 GB, not int64's 3.9): argmax for multiclass, thresholded for
    binary and multilabel. `threshold` is one float or a (K,) array of per-class thresholds (searched per class on
    OOF for multilabel competitions)."""
    if task == "multiclass":
        out = np.zeros_like(p, dtype=np.uint8)
        out[np.arange(len(p)), p.argmax(1)] = 1
        return out
    t = np.asarray(threshold, np.float64)
    if t.ndim != 0 and t.shape != (p.shape[-1],):
        raise PipelineError(f"threshold: expected a float or {p.shape[-1]} per-class values, got shape {t.shape}")
    return (p > t).astype(np.uint8)


def _labels(y, p, task, threshold):
    """1-D true and predicted labels for single-label tasks: argmax (multiclass) or the thresholded column."""
    if task == "multiclass":
        return y.argmax(1), p.argmax(1), list(range(y.shape[1]))
    return y[:, 0].astype(np.int64), hard_predictions(p, task, threshold)[:, 0], [0, 1]


def score(metric: str, y: np.ndarray, p: np.ndarray, task: str, threshold=0.5, beta: float = 2.0,
          top_k: int = 5) -> float:
    from sklearn.metrics import f1_score, fbeta_score

    if metric in REGRESSION_HIGHER_IS_BETTER:  # on values: comp_score unscales them
        return regression_score(metric, y, p)
    if is_wide(y, p):  # predict.keep_top (wide.py): label metrics below read argmax; the others are its own
        if task != "multiclass" or metric not in LABEL_METRICS:
            return wide_score(metric, y, p, task, top_k)
    else:  # as given, no float64 copy: herbarium's (N, 15,501) matrices are only reduced to class indices
        y, p = np.asarray(y), np.asarray(p)
    if metric == "roc_auc":
        return mean_column_auc(y, p)
    if metric == "map_at_k":
        return map_at_k(y, p, top_k)
    if metric == "log_loss":
        return clipped_log_loss(y, p, task)
    if metric == "qwk":
        if task == "multilabel":
            raise PipelineError("competition.metric qwk needs one ordinal label per row: not defined for multilabel")
        true, pred, labels = _labels(y, p, task, threshold)
        # weights (i - j)^2 over every class index, as aptos's text; the grader's default (the grades present in
        # truth or predictions) agrees whenever each grade appears in one of them
        return quadratic_kappa(true, pred, len(labels))
    if metric in ("accuracy", "macro_f1", "f_beta") and task != "multilabel":
        # binary macro_f1 averages the F1 of both classes; binary f_beta is the positive class's only
        true, pred, labels = _labels(y, p, task, threshold)
        if metric == "accuracy":
            return float((true == pred).mean())
        # multiclass: over the classes in the truth or the predictions, as the graders' f1_score: a rare class
        # absent from a fold (herbarium's singletons) is not averaged in as a zero
        labels = None if task == "multiclass" else labels
        if metric == "macro_f1":
            return float(f1_score(true, pred, labels=labels, average="macro", zero_division=0))
        if task == "binary":
            return float(fbeta_score(true, pred, beta=beta, pos_label=1, average="binary", zero_division=0))
        return float(fbeta_score(true, pred, beta=beta, labels=labels, average="macro", zero_division=0))
    hard = hard_predictions(p, task, threshold)
    if metric == "accuracy":  # multilabel: every tag of the row right
        return float((hard == y.astype(np.uint8)).all(1).mean())
    if metric in ("micro_f1", "macro_f1"):  # multilabel macro: per-column F1, averaged
        return float(f1_score(y.astype(np.uint8), hard, average=metric[:5], zero_division=0))
    if metric == "f_beta":  # multilabel: F-beta per row, averaged over rows (Planet Amazon)
        return float(fbeta_score(y.astype(np.uint8), hard, beta=beta, average="samples", zero_division=0))
    raise ValueError(f"unknown metric {metric}")


def comp_score(comp, y: np.ndarray, p: np.ndarray, threshold=None) -> float:
    """The competition's metric (comp: config.Competition); threshold defaults to comp.tag_threshold."""
    if is_wide(y, p):  # predict.keep_top (wide.py); no unknown-class threshold there (thresholds_for refuses it)
        return score(comp.metric, y, p, comp.task, beta=comp.f_beta, top_k=comp.top_k)
    if comp.metric == "map_at_k":  # thresholds: the unknown class's entry, when the stack searched one
        return comp_map_at_k(comp, y, p, threshold)
    if is_ordinal(comp):  # grades cut from the values at `threshold` (the cuts; None: rounding), qwk as for classes
        return score("qwk", *graded(comp, y, p, threshold), "multiclass")
    threshold = comp.tag_threshold if threshold is None else threshold
    if comp.task == "regression":  # predictions and targets are scaled to [0, 1]: the metric is on the values
        y, p = unscale(y, comp.target_range), unscale(p, comp.target_range)
    return score(comp.metric, y, p, comp.task, threshold, beta=comp.f_beta)


def fold_scores(comp, y: np.ndarray, p: np.ndarray, folds: np.ndarray, threshold=None) -> list[float]:
    """comp_score of each fold's rows, folds 0..max in order."""
    folds = np.asarray(folds)
    if folds.shape != (len(y),) or len(p) != len(y):
        raise PipelineError(f"fold_scores: {len(y)} targets, {len(p)} predictions and {folds.shape} folds differ")
    return [comp_score(comp, y[folds == k], p[folds == k], threshold) for k in range(int(folds.max()) + 1)]


def is_better(metric: str, new: float, old: float | None) -> bool:
    if old is None or np.isnan(old):
        return not np.isnan(new) or old is None
    return new > old if HIGHER_IS_BETTER[metric] else new < old
