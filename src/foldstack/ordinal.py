"""Ordinal grades scored by quadratic weighted kappa (aptos2019-blindness-detection: diagnosis 0-4), trained as a
regression: competition.task regression with metric qwk. The model predicts the grade scaled to [0, 1] by
competition.target_range, as any regression; a value becomes a grade by the cuts between consecutive grades: the
midpoints (rounding) unless the stack searched better ones on OOF (stacking/ordinal.py). Imports nothing of the
metrics, so they may import it."""
import numpy as np

from .errors import PipelineError
from .regression import unscale


def quadratic_kappa(true: np.ndarray, pred: np.ndarray, n_grades: int) -> float:
    """Quadratic weighted kappa of (N,) grade indices 0..n_grades-1, as aptos's text defines it: O the histogram of
    (true, predicted) pairs, w_ij = (i - j)^2 / (n_grades - 1)^2, E the outer product of the two grade histograms
    scaled to O's sum; 1 - sum(w O) / sum(w E), NaN when sum(w E) is 0 (one grade in both). Weights over every
    grade index (the text's 0-4), not only those present. numpy, not scikit-learn's cohen_kappa_score: the cut
    search (stacking/ordinal.py) calls it thousands of times."""
    observed = np.bincount(np.asarray(true) * n_grades + np.asarray(pred), minlength=n_grades ** 2).reshape(
        n_grades, n_grades).astype(np.float64)
    expected = np.outer(observed.sum(1), observed.sum(0)) / max(len(true), 1)
    i, j = np.indices(observed.shape)
    weights = (i - j) ** 2 / (n_grades - 1) ** 2
    chance = (weights * expected).sum()
    return float(1 - (weights * observed).sum() / chance) if chance > 0 else float("nan")


def is_ordinal(comp) -> bool:
    """Grades from a regression: the one combination of a regression task with a class metric."""
    return comp.task == "regression" and comp.metric == "qwk"


def check_ordinal(comp) -> None:
    """One line for a config that cannot submit grades: qwk on several targets, grades that are not integers, a
    submission other than the grade, or a grade submitted for a metric that scores values."""
    if comp.task != "regression":
        return
    if comp.submission_format == "label" and comp.metric != "qwk":
        raise PipelineError(f"competition.submission_format=label with task regression submits grades, scored by "
                            f"metric qwk; metric {comp.metric} scores the values: submission_format value")
    if not is_ordinal(comp):
        return
    if len(comp.target_cols) != 1 or len(comp.target_range) != 1:
        raise PipelineError(f"competition.metric qwk with task regression (ordinal grades) needs one target column "
                            f"and its target_range [[lowest, highest grade]]; got target_cols={comp.target_cols}, "
                            f"target_range={[list(r) for r in comp.target_range]}")
    lo, hi = comp.target_range[0]
    if lo % 1 or hi % 1 or hi <= lo:
        raise PipelineError(f"competition.target_range={[[lo, hi]]}: ordinal grades (task regression, metric qwk) "
                            f"are the integers from the lowest to the highest grade, e.g. [[0, 4]]")
    if comp.submission_format != "label":
        raise PipelineError(f"competition.submission_format={comp.submission_format}: ordinal grades (task "
                            f"regression, metric qwk) are submitted as the grade: submission_format label")


def grades(comp) -> np.ndarray:
    """The grades, lowest first: the integers of competition.target_range."""
    lo, hi = comp.target_range[0]
    return np.arange(int(lo), int(hi) + 1)


def midpoints(comp) -> np.ndarray:
    """The cuts that round a value to the nearest grade."""
    return grades(comp)[:-1] + 0.5


def cut_names(comp) -> list[str]:
    """What each cut separates ("0|1"): the names of the stored cuts."""
    g = grades(comp)
    return [f"{a}|{b}" for a, b in zip(g[:-1], g[1:])]


def to_grades(comp, scaled: np.ndarray, cuts=None) -> np.ndarray:
    """(N,) integer grades of (N, 1) scaled predictions: a value at or above a cut belongs to the grade above it.
    cuts: (K-1,) in grade units, ascending; None: the midpoints (rounding)."""
    cuts = midpoints(comp) if cuts is None else np.asarray(cuts, np.float64)
    if cuts.shape != (len(grades(comp)) - 1,):
        raise PipelineError(f"ordinal cuts: {len(grades(comp)) - 1} expected for grades {grades(comp).tolist()}, "
                            f"got {cuts.tolist()}")
    values = unscale(np.asarray(scaled, np.float64).reshape(len(scaled), -1), [comp.target_range[0]])[:, 0]
    return grades(comp)[0] + np.searchsorted(cuts, values, side="right")


def one_hot_grades(comp, grade: np.ndarray) -> np.ndarray:
    """(N, K) indicator of each row's grade, grades lowest first: the class matrices the qwk of metrics.py reads."""
    g = grades(comp)
    out = np.zeros((len(grade), len(g)), np.int64)
    out[np.arange(len(grade)), np.clip(np.asarray(grade) - g[0], 0, len(g) - 1)] = 1
    return out


def graded(comp, y: np.ndarray, p: np.ndarray, cuts=None) -> tuple[np.ndarray, np.ndarray]:
    """Scaled targets and predictions as one-hot grades: the truth rounded (it holds grades), the predictions cut
    at `cuts` (None: the midpoints)."""
    return one_hot_grades(comp, to_grades(comp, y)), one_hot_grades(comp, to_grades(comp, p, cuts))
