"""Per-class decision thresholds searched on OOF predictions (multilabel F-beta, binary F1, ...)."""
import numpy as np

from ..metrics import comp_score, is_better

# metrics that never look at a threshold: nothing to search
THRESHOLD_FREE = ("roc_auc", "log_loss")


def search_thresholds(comp, y, p, grid=np.linspace(0.05, 0.95, 91), passes: int = 2) -> np.ndarray:
    """(K,) thresholds maximising comp's metric (minimising where lower is better) by coordinate ascent: from
    comp.tag_threshold everywhere, each class in turn takes the grid value that scores best given the others,
    `passes` times over the classes (classes interact through sample-averaged F-beta). Only strict improvements
    move a threshold, so ties keep the default and the result is deterministic. Multiclass: argmax ignores
    thresholds, so the defaults come back."""
    y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
    thresholds = np.full(p.shape[1], comp.tag_threshold)
    if comp.task == "multiclass" or comp.metric in THRESHOLD_FREE:
        return thresholds
    best = comp_score(comp, y, p, thresholds)
    for _ in range(passes):
        for k in range(p.shape[1]):
            for value in grid:
                trial = thresholds.copy()
                trial[k] = value
                s = comp_score(comp, y, p, trial)
                if is_better(comp.metric, s, best):
                    best, thresholds = s, trial
    return thresholds
