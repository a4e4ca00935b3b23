"""What every validation fold must hold, checked by counting: rows (or groups) per class and fold.

A requirement names one class (or one side of a tag) of a `Carriers`: the class index of every row, or the (N, K)
tag matrix. The checks count per class and fold in one pass over the rows (np.bincount of class x fold), never an
(N,) mask per class: at herbarium's scale (840k rows, 15,501 classes) those masks alone would take 13 GB and the
loops over them classes x folds x rows; the counts take K x n_splits integers."""
import logging
from dataclasses import dataclass

import numpy as np

from ..errors import PipelineError

log = logging.getLogger("foldstack")


class Carriers:
    """Which rows carry each class (single-label: `labels`, one class index per row) or tag (multilabel:
    `multihot`, (N, K) 0/1). width: the number of classes (a class may have no row)."""

    def __init__(self, labels=None, multihot=None, width: int = 0):
        self.labels = None if labels is None else np.asarray(labels).astype(np.int64, copy=False)
        self.multihot = None if multihot is None else np.asarray(multihot).astype(bool, copy=False)
        found = int(self.labels.max()) + 1 if self.labels is not None else self.multihot.shape[1]
        self.width = max(width, found)
        self.n_rows = len(self.labels if self.labels is not None else self.multihot)

    def per_part(self, parts: np.ndarray, n_parts: int, negative: bool = False) -> np.ndarray:
        """(width, n_parts): the rows of each part (fold 0..n_parts-1) that carry (negative: lack) each class."""
        if self.labels is not None:
            counts = np.bincount(self.labels * n_parts + parts, minlength=self.width * n_parts)
            counts = counts.reshape(self.width, n_parts)
        else:  # one fold's rows at a time: a copy of N / n_parts rows, not N x K masks
            counts = np.stack([(self.multihot[parts == k] if n_parts > 1 else self.multihot).sum(0)
                               for k in range(n_parts)], 1)
        return np.bincount(parts, minlength=n_parts) - counts if negative else counts

    def units(self, groups: np.ndarray | None, negative: bool = False) -> np.ndarray:
        """(width,): how many rows, or distinct groups, carry (negative: lack) each class: at most that many
        folds can hold it."""
        if groups is None:
            return self.per_part(np.zeros(self.n_rows, np.int64), 1, negative)[:, 0]
        _, unit = np.unique(groups, return_inverse=True)
        n_groups = int(unit.max()) + 1
        if self.labels is None:
            seen = np.zeros((n_groups, self.width), bool)
            np.logical_or.at(seen, unit, ~self.multihot if negative else self.multihot)
            return seen.sum(0)
        pairs = np.unique(unit * self.width + self.labels)  # the distinct (group, class) pairs
        group_of, class_of = pairs // self.width, pairs % self.width
        if not negative:
            return np.bincount(class_of, minlength=self.width)
        single = np.bincount(group_of, minlength=n_groups) == 1  # a group of one class lacks every other
        return n_groups - np.bincount(class_of[single[group_of]], minlength=self.width)

    def carry_any(self, columns: list[int]) -> np.ndarray:
        """(N,) bool: the rows that carry any of the classes `columns`."""
        if self.labels is not None:
            return np.isin(self.labels, columns)
        return self.multihot[:, columns].any(1)


@dataclass
class Requirement:
    """Every validation fold must hold at least one row of class `column` of `carriers`."""
    what: str              # "class 'cat'", "tag 'cloudy'"
    carriers: Carriers     # shared by all the requirements on the same rows
    column: int            # the class (tag) index
    why: str               # "stratified folds need", "competition.metric roc_auc needs"
    negative: bool = False  # the rows *without* tag `what` (ROC AUC needs both sides of a tag)
    rare_ok: bool = False   # carried by fewer rows than folds: dropped (and logged), the metric stays defined

    def too_few(self, rows: int) -> str:
        return f"is absent from only {rows} train row(s)" if self.negative else f"has only {rows} train row(s)"

    def gap(self, fold: int) -> str:
        return (f"validation fold {fold} has {self.what} on every row" if self.negative
                else f"validation fold {fold} has no train row of {self.what}")


def _counted(requirements, count):
    """(requirement, its entry of count(carriers, negative)): counted once per carriers and side, not per class."""
    done = {}
    for r in requirements:
        key = (id(r.carriers), r.negative)
        if key not in done:
            done[key] = count(r.carriers, r.negative)
        yield r, done[key][r.column]


def _rows_of(requirements) -> np.ndarray:
    """(N,) bool: the rows that carry any of `requirements` (positive sides)."""
    columns = {}
    for r in requirements:
        columns.setdefault(id(r.carriers), (r.carriers, []))[1].append(r.column)
    return np.logical_or.reduce([c.carry_any(cols) for c, cols in columns.values()])


def check_requirements(requirements, n_splits: int, groups, source: str, group_desc: str) -> None:
    """Before splitting: a requirement carried by fewer rows (groups) than folds cannot be met."""
    for r, units in _counted(requirements, lambda c, negative: c.units(groups, negative)):
        if units >= n_splits:
            continue
        rows = int(r.carriers.units(None, r.negative)[r.column])
        where = r.too_few(rows) if groups is None or units == rows else (
            f"{'is absent from' if r.negative else 'is in'} only {units} of the {group_desc}")
        raise PipelineError(f"folds.n_splits={n_splits}: {r.what} {where} ({source}); {r.why} it in every "
                            f"validation fold: lower folds.n_splits or merge/drop the class")


def set_aside_rare(requirements, n_splits: int, groups) -> tuple[list, list]:
    """(kept, rare): a requirement fewer rows (groups) carry than there are folds cannot be met; where the metric
    stays defined without it (rare_ok) it is set aside, to be spread and logged, instead of refused."""
    kept, rare = [], []
    for r, units in _counted(requirements, lambda c, negative: c.units(groups, negative)):
        (rare if r.rare_ok and units < n_splits else kept).append(r)
    return kept, rare


def pooled_strata(labels: np.ndarray, rare) -> np.ndarray:
    """Stratification labels with every rare class in one shared stratum (-1): StratifiedKFold spreads the pool
    evenly over the folds, where it would refuse (or warn about) each class with fewer rows than folds."""
    strata = np.asarray(labels).copy()
    if rare:
        strata[_rows_of(rare)] = -1
    return strata


def log_rare(rare, folds: np.ndarray, n_splits: int, how: str, source: str, units: str, noun: str = "class") -> None:
    """One log line on the rare classes (noun "tag": multilabel tags) of a split: how many, their rows, and how many
    of those rows have no row of their class in their fold's train part (their out-of-fold prediction cannot be
    right). how: how the folds spread them ("in one shared stratum")."""
    if not rare:
        return
    rows = int(_rows_of(rare).sum())
    # a class whose rows all sit in one fold has none in that fold's train part
    unseen = sum(int(counts.sum()) for _, counts in _counted(rare, lambda c, neg: c.per_part(folds, n_splits, neg))
                 if np.count_nonzero(counts) <= 1)
    plural, counted = ("classes", "class(es)") if noun == "class" else (f"{noun}s", f"{noun}(s)")
    cost = ("the CV counts them as errors; a class-averaged F score averages each fold over the classes it holds"
            if noun == "class" else "the CV counts those tags as missed; micro F1, per-row F scores and log loss "
            "stay defined")
    log.info(f"rare {plural}: {len(rare)} {counted} ({rows} train rows) with fewer {units} each than "
             f"folds.n_splits={n_splits} ({source}) are spread over the folds {how}, not in every validation "
             f"fold; {unseen} of those rows have no row of their {noun} in their fold's train part, so their "
             f"out-of-fold prediction cannot be right ({cost})")


def coverage_problems(folds: np.ndarray, n_splits: int, requirements) -> list:
    """After splitting: [(fold, requirement)] for every validation fold that misses a requirement."""
    return [(k, r) for r, counts in _counted(requirements, lambda c, neg: c.per_part(folds, n_splits, neg))
            for k in range(n_splits) if counts[k] == 0]
