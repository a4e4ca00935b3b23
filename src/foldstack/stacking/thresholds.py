"""Per-class decision thresholds searched on OOF predictions (multilabel F-beta, binary F1, ...), and their file:
a list in class order with the class names beside it, read back by name (a JSON object's keys get sorted)."""
import json
from pathlib import Path

import numpy as np

from ..errors import PipelineError
from ..metrics import comp_score, is_better
from ..ordinal import cut_names, is_ordinal
from .ordinal import fold_honest_cv, search_cuts
from ..topk import search_unknown_threshold
from ..utils.io import atomic_write_json
from ..wide import is_wide, refuse_dense

THRESHOLDS_FILE = "thresholds.json"

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


def thresholds_for(comp, stack_cfg, y, oof: np.ndarray):
    """Per-class thresholds searched on OOF (multilabel with stack.search_thresholds; top-k: the unknown class's,
    topk.py), else None."""
    if is_wide(y, oof):  # predict.keep_top: a multiclass task, nothing to search but the unknown class's
        return None if comp.unknown_class is None or not stack_cfg.search_thresholds else refuse_dense(
            "the unknown class's threshold search (competition.unknown_class, stack.search_thresholds)")
    if comp.metric == "map_at_k" and stack_cfg.search_thresholds:
        return search_unknown_threshold(comp, y, oof)
    if is_ordinal(comp) and stack_cfg.search_thresholds:  # the cuts between grades (stacking/ordinal.py)
        return search_cuts(comp, y, oof)
    if comp.task != "multilabel" or not stack_cfg.search_thresholds:
        return None
    return search_thresholds(comp, y, oof)


def level_thresholds(comp, stack_cfg, y, folder: Path, names: list[str], oof: np.ndarray):
    """The thresholds a level's submission uses, in the order of `names`: the ones stored with a stack, else for
    an experiment a search on its own OOF (multilabel with stack.search_thresholds); None: comp.tag_threshold."""
    stored = read_thresholds(folder, threshold_names(comp, names))
    return stored if stored is not None else thresholds_for(comp, stack_cfg, y, oof)


def threshold_names(comp, names: list[str]) -> list[str]:
    """What each stored threshold belongs to: the prediction columns `names`, or for ordinal grades the two grades
    each cut separates ("0|1")."""
    return cut_names(comp) if is_ordinal(comp) else names


def tuned_cv(comp, y, oof: np.ndarray, folds: np.ndarray, thresholds) -> float:
    """The CV at searched thresholds. Multilabel: at `thresholds`, searched on these same rows (optimistic);
    ordinal grades: each fold's rows cut where a search on the other folds' OOF put the cuts (fold-honest)."""
    return fold_honest_cv(comp, y, oof, folds) if is_ordinal(comp) else comp_score(comp, y, oof, thresholds)


def write_thresholds(folder: Path, names: list[str], thresholds) -> None:
    atomic_write_json(Path(folder) / THRESHOLDS_FILE, {"classes": list(names),
                                                       "thresholds": [float(t) for t in thresholds]})


def read_thresholds(folder: Path, names: list[str]) -> np.ndarray | None:
    """A folder's thresholds in the order of `names` (the prediction columns), None when it has none. Refused
    unless they name exactly these classes. Also reads the older {class: threshold} file, by name."""
    path = Path(folder) / THRESHOLDS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        classes, values = ((data["classes"], data["thresholds"]) if set(data) == {"classes", "thresholds"}
                           else (list(data), list(data.values())))
        by_class = dict(zip(map(str, classes), map(float, values)))
    except (ValueError, TypeError, AttributeError, KeyError) as e:
        raise PipelineError(f"{path}: unreadable thresholds ({e.__class__.__name__})") from None
    if len(classes) != len(values) or sorted(by_class) != sorted(names) or len(by_class) != len(names):
        raise PipelineError(f"{path}: thresholds for classes {list(classes)}, but the predictions have {list(names)}")
    return np.array([by_class[n] for n in names])
