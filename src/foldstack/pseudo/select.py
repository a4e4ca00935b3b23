"""Which test rows become pseudo-labelled training rows, and with which targets. numpy only."""
from dataclasses import dataclass

import numpy as np

from ..errors import PipelineError
from ..metrics import hard_predictions
from ..wide import ClassTargets, TopProbs, refuse_dense


def confidence(p: np.ndarray, task: str) -> np.ndarray:
    """How sure a prediction is, per row: the top class's probability (multiclass), max(p, 1 - p) (binary), the
    least sure tag's max(p, 1 - p) (multilabel: every tag decision must be sure)."""
    if task == "multiclass":
        return p.max(1)
    return np.maximum(p, 1 - p).min(1)


def hard_targets(p: np.ndarray, task: str, tag_threshold: float = 0.5) -> np.ndarray:
    return hard_predictions(p, task, tag_threshold).astype(np.float32)


def predicted_class(p: np.ndarray, task: str) -> np.ndarray | None:
    """The class each row is predicted as, for per-class selection; None for multilabel (no single class)."""
    if task == "multiclass":
        return p.argmax(1)
    return (p[:, 0] > 0.5).astype(np.int64) if task == "binary" else None


@dataclass(frozen=True)
class PseudoSelection:
    """The selected test rows (ascending), their targets (n, K) float32 and their confidence (n,)."""
    rows: np.ndarray
    targets: np.ndarray
    confidence: np.ndarray


def select_pseudo(p: np.ndarray, task: str, rule: str, threshold: float = 0.95, fraction: float = 0.3,
                  soft: bool = False, tag_threshold: float = 0.5) -> PseudoSelection:
    """The selected test rows, their targets and confidence.

    threshold: rows with confidence >= threshold. top_fraction: within each predicted class, the
    ceil(fraction x its rows) most confident ones (ties broken by row order), so the selection keeps the
    predicted class ratio; multilabel ranks all rows together. all: every row (with soft=True: plain soft
    labels). Targets are the hard labels, or with soft=True the predicted probabilities. p as wide.TopProbs
    (predict.keep_top): multiclass, hard labels as ClassTargets."""
    if isinstance(p, TopProbs):
        if soft:
            refuse_dense("pseudo.soft (soft pseudo-labels)")
    else:
        p = np.asarray(p, np.float64)
    conf = confidence(p, task)
    if rule == "threshold":
        idx = np.flatnonzero(conf >= threshold)
    elif rule == "top_fraction":
        groups = predicted_class(p, task)
        groups = np.zeros(len(p), np.int64) if groups is None else np.asarray(groups, np.int64)
        # by class, most confident first, ties by row; a row's rank within its class against its class's quota
        order = np.lexsort((np.arange(len(p)), -conf, groups))
        sizes = np.bincount(groups)
        start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        rank = np.arange(len(p)) - start[groups[order]]
        idx = np.sort(order[rank < np.ceil(fraction * sizes[groups[order]])])
    elif rule == "all":
        idx = np.arange(len(p))
    else:
        raise PipelineError(f"pseudo.rule: unknown rule {rule!r}")
    if isinstance(p, TopProbs):
        return PseudoSelection(idx, ClassTargets(p.argmax()[idx], p.n_classes), conf[idx])
    targets = p[idx].astype(np.float32) if soft else hard_targets(p[idx], task, tag_threshold)
    return PseudoSelection(idx, targets, conf[idx])
