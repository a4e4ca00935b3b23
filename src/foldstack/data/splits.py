"""Fold assignment: the validation fold of every train row, and what every validation fold must hold.

A split that cannot give every validation fold what the metric needs (a class, both sides of a ROC AUC column)
is refused with one line naming the fold and the class: a NaN or meaningless validation metric would otherwise
steer best.pt, plateau schedules and early stopping without a word. Rare classes (fewer rows, or groups, than folds:
herbarium's and whale's thousands of singletons) cannot be in every fold: where the metric stays defined without them
(stratification, class-averaged F scores) they share one stratum and the log counts what that costs; where it does
not (ROC AUC) the split is refused. numpy / scikit-learn only."""
import logging
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import PipelineError

log = logging.getLogger("foldstack")

STRATIFIED = ("stratified", "stratified_group")
GROUPED = ("group", "stratified_group")


@dataclass
class Requirement:
    """Every validation fold must hold at least one of the rows in `mask`."""
    what: str          # "class 'cat'", "tag 'cloudy'"
    mask: np.ndarray   # (N,) bool: the rows that carry it
    why: str           # "stratified folds need", "competition.metric roc_auc needs"
    negative: bool = False  # the rows *without* tag `what` (ROC AUC needs both sides of a tag)
    rare_ok: bool = False   # carried by fewer rows than folds: dropped (and logged), the metric stays defined

    def too_few(self, rows: int) -> str:
        return f"is absent from only {rows} train row(s)" if self.negative else f"has only {rows} train row(s)"

    def gap(self, fold: int) -> str:
        return (f"validation fold {fold} has {self.what} on every row" if self.negative
                else f"validation fold {fold} has no train row of {self.what}")


def resolve_method(method: str, task: str | None, group_col: bool, grouped: bool) -> str:
    """The splitter `auto` stands for. task None: no labels to stratify on. grouped: rows carry groups
    (competition.group_col, or duplicate images under folds.dedupe)."""
    if method != "auto":
        return method
    if task == "multilabel":
        # With a group column: GroupKFold. Iterative stratification of whole groups would weigh a 1-row group
        # like a 500-row one and unbalance the fold sizes; duplicate-image groups (1-3 rows) are stratified as
        # units instead (see assign_folds).
        return "group" if group_col else "multilabel_stratified"
    if task is None:
        return "group" if grouped else "kfold"
    return "stratified_group" if grouped else "stratified"


def _units(mask: np.ndarray, groups: np.ndarray | None) -> int:
    """How many independent pieces (rows, or groups) carry the requirement: at most that many folds can."""
    return int(mask.sum()) if groups is None else len(np.unique(groups[mask]))


def check_requirements(requirements, n_splits: int, groups, source: str, group_desc: str) -> None:
    """Before splitting: a requirement carried by fewer rows (groups) than folds cannot be met."""
    for r in requirements:
        units = _units(r.mask, groups)
        if units >= n_splits:
            continue
        rows = int(r.mask.sum())
        where = r.too_few(rows) if groups is None or units == rows else (
            f"{'is absent from' if r.negative else 'is in'} only {units} of the {group_desc}")
        raise PipelineError(f"folds.n_splits={n_splits}: {r.what} {where} ({source}); {r.why} it in every "
                            f"validation fold: lower folds.n_splits or merge/drop the class")


def set_aside_rare(requirements, n_splits: int, groups) -> tuple[list, list]:
    """(kept, rare): a requirement fewer rows (groups) carry than there are folds cannot be met; where the metric
    stays defined without it (rare_ok) it is set aside, to be spread and logged, instead of refused."""
    kept, rare = [], []
    for r in requirements:
        (rare if r.rare_ok and _units(r.mask, groups) < n_splits else kept).append(r)
    return kept, rare


def pooled_strata(labels: np.ndarray, rare) -> np.ndarray:
    """Stratification labels with every rare class in one shared stratum (-1): StratifiedKFold spreads the pool
    evenly over the folds, where it would refuse (or warn about) each class with fewer rows than folds."""
    strata = np.asarray(labels).copy()
    if rare:
        strata[np.logical_or.reduce([r.mask for r in rare])] = -1
    return strata


def log_rare(rare, folds: np.ndarray, n_splits: int, stratified: bool, source: str, units: str) -> None:
    """One log line on the rare classes of a split: how many, their rows, and how many of those rows have no row of
    their class in their fold's train part (their out-of-fold prediction cannot be right)."""
    if not rare:
        return
    rows = int(np.logical_or.reduce([r.mask for r in rare]).sum())
    unseen = sum(int((r.mask & (folds == k)).sum()) for r in rare for k in range(n_splits)
                 if not (r.mask & (folds != k)).any())
    how = "in one shared stratum" if stratified else "without stratification"
    log.info(f"rare classes: {len(rare)} class(es) ({rows} train rows) with fewer {units} each than "
             f"folds.n_splits={n_splits} ({source}) are spread over the folds {how}, not in every validation "
             f"fold; {unseen} of those rows have no row of their class in their fold's train part, so their "
             f"out-of-fold prediction cannot be right (the CV counts them as errors; a class-averaged F score "
             f"averages each fold over the classes it holds)")


def coverage_problems(folds: np.ndarray, n_splits: int, requirements) -> list:
    """After splitting: [(fold, requirement)] for every validation fold that misses a requirement."""
    return [(k, r) for r in requirements for k in range(n_splits) if not (r.mask & (folds == k)).any()]


def metric_requirements(y: np.ndarray, task: str, metric: str, classes: list[str]) -> list:
    """What competition.metric needs in every validation fold to be defined and meaningful:
    roc_auc: both classes (binary), every class (multiclass, one-vs-rest), both sides of every tag (multilabel);
    class-averaged F scores (macro_f1; f_beta on single-label tasks): every class that has train rows, but a rare
    one may be set aside (rare_ok: a fold's average leaves an absent class out); multilabel macro_f1: every tag's
    positives. Other metrics (accuracy, log_loss, micro_f1, multilabel f_beta per row, qwk) stay defined when a
    class is absent."""
    why = f"competition.metric {metric} needs"
    if task == "multilabel":
        y = y.astype(bool)
        out = []
        if metric in ("roc_auc", "macro_f1"):
            out += [Requirement(f"tag {c!r}", y[:, j], why) for j, c in enumerate(classes)]
        if metric == "roc_auc":
            out += [Requirement(f"tag {c!r}", ~y[:, j], why, negative=True) for j, c in enumerate(classes)]
        return out
    labels = y[:, 0].astype(int) if task == "binary" else y.argmax(1)
    present = set(np.unique(labels).tolist())
    averaged = metric == "macro_f1" or (metric == "f_beta" and task == "multiclass")
    if metric == "roc_auc":
        wanted = range(len(classes))
    elif averaged:  # a rare class may miss a fold: the fold's average leaves it out, as the graders' F1 does
        wanted = sorted(present)
    elif metric == "f_beta":  # binary: the positive class's F score
        wanted = [1]
    else:
        return []
    return [Requirement(f"class {classes[c]!r}", labels == c, why, rare_ok=averaged) for c in wanted]


def _merge(*lists) -> list:
    """Requirements once each (the same class asked for by stratification and by the metric): the strict one where
    one is (a class ROC AUC needs stays needed, though stratification alone could set it aside as rare)."""
    out = {}
    for r in (r for rs in lists for r in rs):
        key = (r.what, r.negative)
        if key not in out or (out[key].rare_ok and not r.rare_ok):
            out[key] = r
    return list(out.values())


def assign_folds(n_rows: int, n_splits: int, seed: int, method: str = "auto",
                 labels: np.ndarray | None = None, groups: np.ndarray | None = None,
                 multihot: np.ndarray | None = None, requirements: list | None = None,
                 classes: list[str] | None = None, source: str = "train rows",
                 group_desc: str = "groups") -> np.ndarray:
    """Fold (0..n_splits-1) of each row. labels: single-label classes (stratification); multihot: (N, K) 0/1
    tags (iterative stratification); groups: rows of a group share a fold. requirements: what every validation
    fold must hold (on top of every class under a stratified method); an unmeetable one is one line."""
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold  # start-up time

    task = "single" if labels is not None else "multilabel" if multihot is not None else None
    method = resolve_method(method, task, groups is not None, groups is not None)
    if method in STRATIFIED and labels is None:
        raise PipelineError(f"folds.method={method} needs a single-label task")
    if method == "multilabel_stratified" and multihot is None:
        raise PipelineError(f"folds.method={method} needs a multilabel task")
    if method in GROUPED and groups is None:
        raise PipelineError(f"folds.method={method} needs competition.group_col (or folds.dedupe with duplicates)")
    if n_rows < n_splits:
        raise PipelineError(f"folds.n_splits={n_splits} is more than the {n_rows} train rows")
    split_groups = groups if method in GROUPED or method == "multilabel_stratified" else None
    if split_groups is not None:
        n_groups = len(np.unique(split_groups))
        if n_groups < n_splits:
            raise PipelineError(f"folds.n_splits={n_splits}: only {n_groups} {group_desc} ({source}); every fold "
                                f"needs at least one: lower folds.n_splits")
    if method in STRATIFIED:
        names = classes or [str(c) for c in range(int(labels.max()) + 1)]
        strat = [Requirement(f"class {names[c]!r}", labels == c, "stratified folds need", rare_ok=True)
                 for c in np.unique(labels).tolist()]
        requirements = _merge(strat, requirements or [])
    requirements, rare = set_aside_rare(requirements or [], n_splits, split_groups)
    check_requirements(requirements, n_splits, split_groups, source, group_desc)

    folds = np.full(n_rows, -1, np.int64)
    if method == "multilabel_stratified":
        from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

        y, inverse = np.asarray(multihot).astype(bool), None
        if groups is not None:  # each group one unit, carrying the union of its rows' tags
            _, inverse = np.unique(groups, return_inverse=True)
            units = np.zeros((inverse.max() + 1, y.shape[1]), bool)
            np.logical_or.at(units, inverse, y)
            y = units
        unit_folds = np.full(len(y), -1, np.int64)
        splitter = MultilabelStratifiedKFold(n_splits, shuffle=True, random_state=seed)
        for k, (_, valid) in enumerate(splitter.split(np.zeros(len(y)), y.astype(np.int64))):
            unit_folds[valid] = k
        folds = unit_folds if inverse is None else unit_folds[inverse]
    else:
        splitter = {"kfold": KFold(n_splits, shuffle=True, random_state=seed),
                    "stratified": StratifiedKFold(n_splits, shuffle=True, random_state=seed),
                    "group": GroupKFold(n_splits, shuffle=True, random_state=seed),
                    "stratified_group": StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)}[method]
        y = pooled_strata(labels, rare) if labels is not None else np.zeros(n_rows)
        with warnings.catch_warnings():  # a pool of rare rows smaller than n_splits: spread as far as it goes
            warnings.filterwarnings("ignore", message="The least populated class in y")
            for k, (_, valid) in enumerate(splitter.split(np.zeros(n_rows), y, split_groups)):
                folds[valid] = k
    problems = coverage_problems(folds, n_splits, requirements)
    if problems:
        k, r = problems[0]
        more = f" (and {len(problems) - 1} more fold/class gap(s))" if len(problems) > 1 else ""
        raise PipelineError(f"folds.n_splits={n_splits} ({method}, seed {seed}): {r.gap(k)} ({source}){more}; "
                            f"{r.why} it in every validation fold: change folds.seed or folds.method, or lower "
                            f"folds.n_splits")
    log_rare(rare, folds, n_splits, method in STRATIFIED, source, group_desc if split_groups is not None else "rows")
    return folds
