"""How the folds' models are averaged into the test predictions (predict.fold_outlier): alike (`keep`), by validation
score (`weight`), or not at all when a fold is far below the others (`refuse`): worse than the others' median by more
than predict.fold_outlier_gap, in the metric's units (a fold a slowed-down machine cut short, not a harder one)."""
import numpy as np

from .errors import PipelineError
from .metrics import HIGHER_IS_BETTER


def outlier_folds(scores: list, metric: str, gap: float) -> list[int]:
    """The folds whose score is worse than the median of the others' by more than gap."""
    sign = 1 if HIGHER_IS_BETTER[metric] else -1
    return [k for k, s in enumerate(scores)
            if len(scores) > 1 and sign * (float(np.median(np.delete(scores, k))) - s) > gap]


def fold_weights(scores: list, metric: str, mode: str, gap: float) -> list[float] | None:
    """Each fold's share of the test average (they sum to 1), or None for all alike (`keep`, and `weight` when no
    fold scores above 0). `weight`: proportional to the score (to its inverse for a loss); `refuse` raises a
    PipelineError naming the first fold far below the others."""
    if mode == "refuse":
        for k in outlier_folds(scores, metric, gap):
            others = float(np.median(np.delete(scores, k)))
            raise PipelineError(f"fold {k}: validation {metric} {scores[k]:.4f} against {others:.4f} for the other "
                                f"folds (worse by more than predict.fold_outlier_gap={gap}): retrain it, or set "
                                f"predict.fold_outlier=keep or weight")
    if mode != "weight":
        return None
    values = np.asarray(scores, dtype=np.float64)
    raw = np.clip(values, 0, None) if HIGHER_IS_BETTER[metric] else 1 / np.clip(values, 1e-12, None)
    return (raw / raw.sum()).tolist() if raw.sum() > 0 else None


def cv_table_note(outliers: list[int], weights: list | None) -> str:
    """What the OOF CV line adds after the fold scores: the folds far below the others (outlier_folds), the weights."""
    notes = [f"fold {k} far below the others" for k in outliers]
    if weights is not None:
        notes.append("test weighted " + ", ".join(f"{w:.3f}" for w in weights))
    return f" [{'; '.join(notes)}]" if notes else ""
