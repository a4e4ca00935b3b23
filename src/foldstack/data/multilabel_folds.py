"""Multilabel folds: iterative stratification where it takes seconds, stratification on each row's rarest tag past
that.

iterstrat's MultilabelStratifiedKFold (iterative stratification, Sechidis et al. 2011) places the rows of the tag
with the fewest unplaced rows, then rescans every unplaced row to find the next tag: about N x K² steps. Measured on
2 cores: 7-10 s at 10,000 rows x 1,000 tags, 39 s at 10,000 x 2,000; imet-2020's 142,119 x 3,474 would take about 50
minutes (docs/scale.md). The library has no faster mode and the time is in its algorithm, not in how it is called
(it converts any dtype to one bool matrix itself). So past ITERATIVE_STEPS, `auto` uses `multilabel_rarest`:
scikit-learn's StratifiedKFold on each row's rarest tag (the tag iterative stratification would place that row by
first), strata of fewer rows than folds pooled, as rare single-label classes are. Every row's rarest tag is balanced
over the folds; its other tags land where their rows go, so a mid-frequency tag is less balanced than under
iterative stratification (measured in docs/scale.md)."""
import logging
import warnings

import numpy as np

log = logging.getLogger("foldstack")

MULTILABEL = ("multilabel_stratified", "multilabel_rarest")
# N x K² above which iterstrat would run past about 15 s on 2 cores (10,000 x 1,000 = 1e10 takes 4-10 s)
ITERATIVE_STEPS = 2e10


def multilabel_method(n_rows: int, n_tags: int) -> str:
    """The multilabel splitter `auto` picks for an (n_rows, n_tags) tag matrix."""
    return "multilabel_rarest" if n_rows * n_tags ** 2 > ITERATIVE_STEPS else "multilabel_stratified"


def rarest_tag_strata(y: np.ndarray, n_splits: int) -> tuple[np.ndarray, int]:
    """(stratum of each row, rows pooled): the row's tag with the fewest rows (ties: the lower index), -2 for a row
    without tags; strata of fewer rows than folds share stratum -1. y: (N, K) bool."""
    counts = y.sum(0)
    rows, tags = np.nonzero(y)  # the (row, tag) pairs: N x tags a row, never an (N, K) array of counts
    first = np.lexsort((tags, counts[tags], rows))
    rows, tags = rows[first], tags[first]
    rarest = np.r_[True, rows[1:] != rows[:-1]]
    strata = np.full(len(y), -2, np.int64)
    strata[rows[rarest]] = tags[rarest]
    _, inverse, sizes = np.unique(strata, return_inverse=True, return_counts=True)
    small = sizes[inverse] < n_splits
    strata[small] = -1
    return strata, int(small.sum())


def tag_deviation(tags, folds: np.ndarray, n_splits: int, min_rows: int = 0) -> np.ndarray:
    """Per tag with at least max(min_rows, n_splits) rows: the largest deviation of its fold share (its rows in a
    fold / its rows) from 1/n_splits. tags: fold_requirements.Carriers of the tag matrix."""
    per_fold = tags.per_part(folds, n_splits)
    total = per_fold.sum(1)
    measured = total >= max(min_rows, n_splits)
    return np.abs(per_fold[measured] / total[measured, None] - 1 / n_splits).max(1)


def multilabel_folds(tags, groups, n_splits: int, seed: int, method: str, auto: bool) -> np.ndarray:
    """Fold of each row. tags: Carriers of the (N, K) tag matrix; groups: rows of a group share a fold (each group
    one unit carrying the union of its rows' tags); auto: `method` was picked by size, said in the log."""
    y, inverse = tags.multihot, None
    if groups is not None:
        _, inverse = np.unique(groups, return_inverse=True)
        units = np.zeros((inverse.max() + 1, y.shape[1]), bool)
        np.logical_or.at(units, inverse, y)
        y = units
    unit_folds = np.full(len(y), -1, np.int64)
    if method == "multilabel_stratified":
        from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

        splitter = MultilabelStratifiedKFold(n_splits, shuffle=True, random_state=seed)
        # bool as it is: iterstrat converts any 0/1 dtype to bool itself (same folds), so no int copy of (N, K)
        for k, (_, valid) in enumerate(splitter.split(np.zeros(len(y)), y)):
            unit_folds[valid] = k
    else:
        from sklearn.model_selection import StratifiedKFold

        strata, pooled = rarest_tag_strata(y, n_splits)
        with warnings.catch_warnings():  # a pool smaller than n_splits: spread as far as it goes
            warnings.filterwarnings("ignore", message="The least populated class in y")
            splitter = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
            for k, (_, valid) in enumerate(splitter.split(np.zeros(len(y)), strata)):
                unit_folds[valid] = k
    folds = unit_folds if inverse is None else unit_folds[inverse]
    if method == "multilabel_rarest":
        deviation = tag_deviation(tags, folds, n_splits)
        why = (f"folds.method=auto: {len(y):,} {'groups' if groups is not None else 'rows'} x {y.shape[1]:,} tags "
               f"is past iterative stratification's size (N x K² = {len(y) * y.shape[1] ** 2:.1e} > "
               f"{ITERATIVE_STEPS:.0e}, minutes to hours)" if auto else "folds.method=multilabel_rarest")
        log.info(f"{why}: folds stratified on each row's rarest tag (StratifiedKFold; {pooled:,} rows whose rarest "
                 f"tag stratum has fewer than {n_splits} rows share one stratum), an approximation of iterative "
                 f"stratification; a tag's fold share is at most {deviation.max(initial=0):.3f} from 1/{n_splits} "
                 f"(mean {deviation.mean() if len(deviation) else 0:.3f}) over the {len(deviation):,} tags with "
                 f"{n_splits}+ rows")
    return folds
