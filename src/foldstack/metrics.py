"""Competition metrics on (N, K) target and probability matrices. scikit-learn is imported on first use: stages
that only read artifacts (make submit, an up-to-date make stack) start without it."""
import numpy as np

from .errors import PipelineError

HIGHER_IS_BETTER = {"roc_auc": True, "accuracy": True, "log_loss": False, "micro_f1": True, "macro_f1": True,
                    "qwk": True, "f_beta": True}
EPS = 1e-7


def _binary_cross_entropy(y, p) -> float:
    p = np.clip(p, EPS, 1 - EPS)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def hard_predictions(p: np.ndarray, task: str, threshold=0.5) -> np.ndarray:
    """0/1 matrix: argmax for multiclass, thresholded for binary and multilabel. `threshold` is one float or a
    (K,) array of per-class thresholds (searched per class on OOF for multilabel competitions)."""
    if task == "multiclass":
        out = np.zeros_like(p, dtype=np.int64)
        out[np.arange(len(p)), p.argmax(1)] = 1
        return out
    t = np.asarray(threshold, np.float64)
    if t.ndim != 0 and t.shape != (p.shape[-1],):
        raise PipelineError(f"threshold: expected a float or {p.shape[-1]} per-class values, got shape {t.shape}")
    return (p > t).astype(np.int64)


def _labels(y, p, task, threshold):
    """1-D true and predicted labels for single-label tasks: argmax (multiclass) or the thresholded column."""
    if task == "multiclass":
        return y.argmax(1), p.argmax(1), list(range(y.shape[1]))
    return y[:, 0].astype(np.int64), hard_predictions(p, task, threshold)[:, 0], [0, 1]


def score(metric: str, y: np.ndarray, p: np.ndarray, task: str, threshold=0.5, beta: float = 2.0) -> float:
    from sklearn.metrics import cohen_kappa_score, f1_score, fbeta_score, log_loss, roc_auc_score

    y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
    if metric == "roc_auc":
        if task == "multiclass":
            labels = y.argmax(1)
            if len(np.unique(labels)) < y.shape[1]:
                return float("nan")
            return float(roc_auc_score(labels, p / p.sum(1, keepdims=True), multi_class="ovr"))
        if any(len(np.unique(y[:, k])) < 2 for k in range(y.shape[1])):
            return float("nan")  # AUC is undefined when a fold holds one class only
        return float(roc_auc_score(y, p, average="macro"))
    if metric == "log_loss":
        if task == "multiclass":
            p = np.clip(p, EPS, 1)
            return float(log_loss(y.argmax(1), p / p.sum(1, keepdims=True), labels=list(range(y.shape[1]))))
        return _binary_cross_entropy(y, p)
    if metric == "qwk":
        if task == "multilabel":
            raise PipelineError("competition.metric qwk needs one ordinal label per row: not defined for multilabel")
        true, pred, labels = _labels(y, p, task, threshold)
        return float(cohen_kappa_score(true, pred, labels=labels, weights="quadratic"))
    if metric in ("macro_f1", "f_beta") and task != "multilabel":
        # binary macro_f1 averages the F1 of both classes; binary f_beta is the positive class's only
        true, pred, labels = _labels(y, p, task, threshold)
        # multiclass: over the classes in the truth or the predictions, as the graders' f1_score: a rare class
        # absent from a fold (herbarium's singletons) is not averaged in as a zero
        labels = None if task == "multiclass" else labels
        if metric == "macro_f1":
            return float(f1_score(true, pred, labels=labels, average="macro", zero_division=0))
        if task == "binary":
            return float(fbeta_score(true, pred, beta=beta, pos_label=1, average="binary", zero_division=0))
        return float(fbeta_score(true, pred, beta=beta, labels=labels, average="macro", zero_division=0))
    hard = hard_predictions(p, task, threshold)
    if metric == "accuracy":
        return float((hard == y.astype(np.int64)).all(1).mean())
    if metric in ("micro_f1", "macro_f1"):  # multilabel macro: per-column F1, averaged
        return float(f1_score(y.astype(np.int64), hard, average=metric[:5], zero_division=0))
    if metric == "f_beta":  # multilabel: F-beta per row, averaged over rows (Planet Amazon)
        return float(fbeta_score(y.astype(np.int64), hard, beta=beta, average="samples", zero_division=0))
    raise ValueError(f"unknown metric {metric}")


def comp_score(comp, y: np.ndarray, p: np.ndarray, threshold=None) -> float:
    """The competition's metric (comp: config.Competition); threshold defaults to comp.tag_threshold."""
    threshold = comp.tag_threshold if threshold is None else threshold
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
