"""Competition metrics on (N, K) target and probability matrices."""
import numpy as np
from sklearn.metrics import f1_score, log_loss, roc_auc_score

HIGHER_IS_BETTER = {"roc_auc": True, "accuracy": True, "log_loss": False, "micro_f1": True}
EPS = 1e-7


def _binary_cross_entropy(y, p) -> float:
    p = np.clip(p, EPS, 1 - EPS)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def hard_predictions(p: np.ndarray, task: str, threshold: float = 0.5) -> np.ndarray:
    """0/1 matrix: argmax for multiclass, thresholded for binary and multilabel."""
    if task == "multiclass":
        out = np.zeros_like(p, dtype=np.int64)
        out[np.arange(len(p)), p.argmax(1)] = 1
        return out
    return (p > threshold).astype(np.int64)


def score(metric: str, y: np.ndarray, p: np.ndarray, task: str, threshold: float = 0.5) -> float:
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
    hard = hard_predictions(p, task, threshold)
    if metric == "accuracy":
        return float((hard == y.astype(np.int64)).all(1).mean())
    if metric == "micro_f1":
        return float(f1_score(y.astype(np.int64), hard, average="micro", zero_division=0))
    raise ValueError(f"unknown metric {metric}")


def is_better(metric: str, new: float, old: float | None) -> bool:
    if old is None or np.isnan(old):
        return not np.isnan(new) or old is None
    return new > old if HIGHER_IS_BETTER[metric] else new < old
