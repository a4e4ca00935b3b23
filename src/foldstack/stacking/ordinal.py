"""The cuts between ordinal grades (task regression, metric qwk: foldstack/ordinal.py) searched on OOF values, as
aptos's winners tuned theirs, and the fold-honest CV of doing so: fold k's rows cut where the other folds' OOF
put the cuts."""
import numpy as np

from ..metrics import comp_score, is_better
from ..ordinal import grades, midpoints, to_grades
from ..regression import scale

STEP = 0.02  # grade units between two candidate positions of a cut


def search_cuts(comp, y: np.ndarray, oof: np.ndarray, max_passes: int = 4) -> np.ndarray:
    """(K-1,) ascending cuts, in grade units, maximising qwk on the rows (y, oof scaled as stored). Coordinate
    ascent from the midpoints: each cut in turn takes the position (a STEP grid between its neighbours' cuts, the
    outer ones bounded by the lowest and highest grade) that scores best given the others, until a pass moves
    none. qwk is a step function of the cuts, which gradient and simplex methods stall on; only strict
    improvements move a cut, so ties keep the midpoints and the result is deterministic."""
    g = grades(comp)
    cuts = midpoints(comp)
    best = comp_score(comp, y, oof, cuts)
    grid = np.round(np.arange(g[0], g[-1] + STEP / 2, STEP), 6)
    for _ in range(max_passes):
        moved = False
        for k in range(len(cuts)):
            lower = cuts[k - 1] if k else g[0] - STEP
            upper = cuts[k + 1] if k + 1 < len(cuts) else g[-1] + STEP
            for value in grid[(grid > lower) & (grid < upper)]:
                trial = cuts.copy()
                trial[k] = value
                s = comp_score(comp, y, oof, trial)
                if is_better(comp.metric, s, best):
                    best, cuts, moved = s, trial, True
        if not moved:
            break
    return cuts


def fold_honest_grades(comp, y: np.ndarray, oof: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """(N, 1) scaled grades: each fold's rows cut at the cuts searched on the other folds' OOF rows, so that their
    qwk (at the midpoints, which keep a grade a grade) estimates the searched cuts' score on unseen rows."""
    out = np.zeros((len(oof), 1))
    for k in np.unique(folds):
        valid = folds == k
        cuts = search_cuts(comp, y[~valid], oof[~valid])
        out[valid, 0] = to_grades(comp, oof[valid], cuts)
    return scale(out, [comp.target_range[0]])


def fold_honest_cv(comp, y: np.ndarray, oof: np.ndarray, folds: np.ndarray) -> float:
    """qwk of the OOF rows cut at cuts searched without them (fold_honest_grades)."""
    return comp_score(comp, y, fold_honest_grades(comp, y, oof, folds))
