"""Fold assignment: the validation fold of every train row, and what every validation fold must hold.

A split that cannot give every validation fold what the metric needs (a class, both sides of a ROC AUC column)
is refused with one line naming the fold and the class: a NaN or meaningless validation metric would otherwise
steer best.pt, plateau schedules and early stopping without a word. Rare classes (fewer rows, or groups, than folds:
herbarium's and whale's thousands of singletons) cannot be in every fold: where the metric stays defined without them
(stratification, class-averaged F scores) they share one stratum and the log counts what that costs; where it does
not (ROC AUC) the split is refused. Rare multilabel tags likewise: spread and counted under micro F1, per-row F
scores and log loss, refused under ROC AUC and multilabel macro F1. The checks count rows per class and fold
(data/fold_requirements.py), so they run at herbarium's scale. numpy / scikit-learn / iterstrat only; multilabel
splitters in data/multilabel_folds.py."""
import warnings

import numpy as np

from ..errors import PipelineError
from .fold_requirements import (Carriers, Requirement, check_requirements, coverage_problems, log_rare,
                                pooled_strata, set_aside_rare)
from .multilabel_folds import MULTILABEL, multilabel_folds, multilabel_method

STRATIFIED = ("stratified", "stratified_group")
GROUPED = ("group", "stratified_group")


def resolve_method(method: str, task: str | None, group_col: bool, grouped: bool,
                   tags_shape: tuple[int, int] | None = None) -> str:
    """The splitter `auto` stands for. task None: no labels to stratify on. grouped: rows carry groups
    (competition.group_col, or duplicate images under folds.dedupe). tags_shape: the multilabel (N, K) tag matrix's
    shape; past a size iterative stratification takes minutes to hours (data/multilabel_folds.py)."""
    if method != "auto":
        return method
    if task == "multilabel":
        # With a group column: GroupKFold. Iterative stratification of whole groups would weigh a 1-row group
        # like a 500-row one and unbalance the fold sizes; duplicate-image groups (1-3 rows) are stratified as
        # units instead (see assign_folds).
        return "group" if group_col else multilabel_method(*(tags_shape or (0, 0)))
    if task is None:
        return "group" if grouped else "kfold"
    return "stratified_group" if grouped else "stratified"


def metric_requirements(y: np.ndarray, task: str, metric: str, classes: list[str]) -> list:
    """What competition.metric needs in every validation fold to be defined and meaningful:
    roc_auc: both classes (binary), every class (multiclass, one-vs-rest), both sides of every tag (multilabel);
    class-averaged F scores (macro_f1; f_beta on single-label tasks): every class that has train rows, but a rare
    one may be set aside (rare_ok: a fold's average leaves an absent class out); multilabel macro_f1: every tag's
    positives (metrics.py averages F1 over every tag column, as the graders' f1_score does: a tag absent from a
    fold's truth and predictions would count as 0 there). Other metrics (accuracy, log_loss, micro_f1, multilabel
    f_beta per row, qwk) stay defined when a class is absent. y: the (N, K) targets, or for a single-label task the
    (N,) class index (data/table.py's class_index: no one-hot needed)."""
    why = f"competition.metric {metric} needs"
    if task == "multilabel":
        if metric not in ("roc_auc", "macro_f1"):
            return []
        tags = Carriers(multihot=y, width=len(classes))
        out = [Requirement(f"tag {c!r}", tags, j, why) for j, c in enumerate(classes)]
        if metric == "roc_auc":
            out += [Requirement(f"tag {c!r}", tags, j, why, negative=True) for j, c in enumerate(classes)]
        return out
    labels = np.asarray(y) if np.ndim(y) == 1 else y[:, 0].astype(int) if task == "binary" else y.argmax(1)
    present = np.unique(labels).tolist()
    averaged = metric == "macro_f1" or (metric == "f_beta" and task == "multiclass")
    if metric == "roc_auc":
        wanted = range(len(classes))
    elif averaged:  # a rare class may miss a fold: the fold's average leaves it out, as the graders' F1 does
        wanted = present
    elif metric == "f_beta":  # binary: the positive class's F score
        wanted = [1]
    else:
        return []
    rows = Carriers(labels, width=len(classes))
    return [Requirement(f"class {classes[c]!r}", rows, c, why, rare_ok=averaged) for c in wanted]


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
    auto = method == "auto"
    method = resolve_method(method, task, groups is not None, groups is not None,
                            None if multihot is None else np.shape(multihot))
    if method in STRATIFIED and labels is None:
        raise PipelineError(f"folds.method={method} needs a single-label task")
    if method in MULTILABEL and multihot is None:
        raise PipelineError(f"folds.method={method} needs a multilabel task")
    if method in GROUPED and groups is None:
        raise PipelineError(f"folds.method={method} needs competition.group_col (or folds.dedupe with duplicates)")
    if n_rows < n_splits:
        raise PipelineError(f"folds.n_splits={n_splits} is more than the {n_rows} train rows")
    split_groups = groups if method in GROUPED or method in MULTILABEL else None
    if split_groups is not None:
        n_groups = len(np.unique(split_groups))
        if n_groups < n_splits:
            raise PipelineError(f"folds.n_splits={n_splits}: only {n_groups} {group_desc} ({source}); every fold "
                                f"needs at least one: lower folds.n_splits")
    if method in STRATIFIED:
        names = classes or [str(c) for c in range(int(labels.max()) + 1)]
        rows = Carriers(labels)
        strat = [Requirement(f"class {names[c]!r}", rows, c, "stratified folds need", rare_ok=True)
                 for c in np.unique(labels).tolist()]
        requirements = _merge(strat, requirements or [])
    tags = Carriers(multihot=multihot, width=len(classes or [])) if method in MULTILABEL else None
    if tags is not None:  # every tag balanced over the folds; one with fewer rows than folds is rare
        names = classes or [str(j) for j in range(tags.width)]
        strat = [Requirement(f"tag {names[j]!r}", tags, j, "stratified folds need", rare_ok=True)
                 for j in np.flatnonzero(tags.units(None)).tolist()]
        requirements = _merge(strat, requirements or [])
    requirements, rare = set_aside_rare(requirements or [], n_splits, split_groups)
    if method in MULTILABEL:  # neither splitter promises each tag in every fold: check only what the metric needs
        requirements = [r for r in requirements if not r.rare_ok]
    check_requirements(requirements, n_splits, split_groups, source, group_desc)

    folds = np.full(n_rows, -1, np.int64)
    if method in MULTILABEL:
        folds = multilabel_folds(tags, groups, n_splits, seed, method, auto)
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
    how = {"multilabel_stratified": "by iterative stratification", "multilabel_rarest": "in one shared stratum",
           **{m: "in one shared stratum" for m in STRATIFIED}}.get(method, "without stratification")
    log_rare(rare, folds, n_splits, how, source, group_desc if split_groups is not None else "rows",
             "tag" if method in MULTILABEL else "class")
    return folds
