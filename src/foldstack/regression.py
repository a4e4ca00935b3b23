"""Regression as a task: numeric targets scaled to [0, 1] by competition.target_range (what the model predicts and
the prediction files hold), unscaled for the metrics (rmse, mae, r2) and the submission; quantile bins that the
folds stratify on; and discovery of a numeric target column. Imports nothing of the metrics or the stages, so they
may import it."""
import numpy as np
import pandas as pd

from .errors import PipelineError

HIGHER_IS_BETTER = {"rmse": False, "mae": False, "r2": True}
MAX_CLASSES = 20  # an integer column with more distinct values than this is a number, not a class


def regression_score(metric: str, y: np.ndarray, p: np.ndarray) -> float:
    """rmse / mae over every cell (one target: the plain definition), r2 averaged over the target columns (sklearn's
    uniform average), on (N, T) unscaled values."""
    y, p = np.asarray(y, np.float64).reshape(len(y), -1), np.asarray(p, np.float64).reshape(len(p), -1)
    if y.shape != p.shape:
        raise PipelineError(f"{metric}: {y.shape} targets and {p.shape} predictions differ")
    err = p - y
    if metric == "rmse":
        return float(np.sqrt(np.mean(err ** 2)))
    if metric == "mae":
        return float(np.mean(np.abs(err)))
    if metric == "r2":
        total = ((y - y.mean(0)) ** 2).sum(0)
        return float(np.mean(1 - (err ** 2).sum(0) / np.where(total > 0, total, np.nan)))
    raise ValueError(f"unknown regression metric {metric}")


def _bounds(target_range, width: int) -> tuple[np.ndarray, np.ndarray]:
    if len(target_range) != width:
        raise PipelineError(f"competition.target_range: {len(target_range)} [min, max] pairs for {width} target "
                            f"column(s); write one per column of competition.target_cols")
    lo, hi = np.asarray(target_range, np.float64).reshape(width, 2).T
    if not (hi > lo).all():
        raise PipelineError(f"competition.target_range={[list(r) for r in target_range]}: each max must exceed its min")
    return lo, hi


def scale(values: np.ndarray, target_range) -> np.ndarray:
    """Unscaled (N, T) values -> [0, 1] by each column's [min, max]."""
    values = np.asarray(values, np.float64)
    lo, hi = _bounds(target_range, values.shape[1])
    return (values - lo) / (hi - lo)


def unscale(scaled: np.ndarray, target_range) -> np.ndarray:
    """Scaled (N, T) predictions or targets back to the target's units."""
    scaled = np.asarray(scaled, np.float64)
    lo, hi = _bounds(target_range, scaled.shape[1])
    return scaled * (hi - lo) + lo


def target_values(frame: pd.DataFrame, cols: list[str], source: str) -> np.ndarray:
    """The target columns as (N, T) float64; a cell that is not a number is one line naming its CSV row."""
    values = frame[cols].apply(pd.to_numeric, errors="coerce")
    bad = values.index[values.isna().any(axis=1)]
    if len(bad):
        col = next(c for c in cols if pd.isna(values.at[bad[0], c]))
        raise PipelineError(f"{source} row {bad[0] + 2}: {col}={frame.at[bad[0], col]!r} is not a number "
                            f"(competition.task is regression)")
    return values.to_numpy(np.float64)


def regression_targets(frame: pd.DataFrame, comp, source: str) -> np.ndarray:
    """Targets as float32 (N, T) in [0, 1]; a value outside competition.target_range names its row."""
    values = target_values(frame, list(comp.target_cols), source)
    scaled = scale(values, comp.target_range)
    outside = np.flatnonzero(((scaled < 0) | (scaled > 1)).any(axis=1))
    if len(outside):
        row = frame.index[outside[0]]
        raise PipelineError(f"{source} row {row + 2}: target {values[outside[0]].tolist()} outside "
                            f"competition.target_range {[list(r) for r in comp.target_range]}; widen it")
    return scaled.astype(np.float32)


def binned_labels(y: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """(N,) quantile-bin index of the first target, for stratified folds: every bin holds about N / n_bins rows
    (ties share a bin, so a target with few values gets fewer bins)."""
    first = np.asarray(y, np.float64).reshape(len(y), -1)[:, 0]
    edges = np.unique(np.quantile(first, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, first, side="right").astype(np.int64)


def discover_regression(train: pd.DataFrame, target_cols: list[str], sample: pd.DataFrame) -> dict | None:
    """The competition keys of a regression, or None: every target column numeric, one of them a number rather
    than a class (a non-integer, more than MAX_CLASSES distinct values, or fractional guesses in the sample for more
    than two values), and each also a numeric column of the sample submission (petfinder: Pawpularity 1-100)."""
    if any(c not in sample.columns for c in target_cols):
        return None
    values = train[target_cols].apply(pd.to_numeric, errors="coerce")
    guesses = sample[target_cols].apply(pd.to_numeric, errors="coerce")
    if values.isna().any().any() or guesses.isna().any().any():
        return None
    # a number rather than a class: fractional, or more values than classes go; or guessed as fractions by the
    # sample (MLE-bench's petfinder: uniform floats) where train has more than the two values of a binary target
    numeric = [(values[c] % 1 != 0).any() or values[c].nunique() > MAX_CLASSES
               or ((guesses[c] % 1 != 0).any() and values[c].nunique() > 2) for c in target_cols]
    if not any(numeric):
        return None
    ranges = [[float(values[c].min()), float(values[c].max())] for c in target_cols]
    if any(lo == hi for lo, hi in ranges):
        return None
    return dict(task="regression", classes=[], metric="rmse", submission_format="value", target_range=ranges)
