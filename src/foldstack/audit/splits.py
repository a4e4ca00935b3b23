"""Audit checks of the splits on disk: each folds.csv puts every train id in exactly one fold (sizes as its
manifest says), every class (tag) the metric needs is in every validation fold (per-fold counts as a table), and
each group of competition.group_col sits in one validation fold."""
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts import read_manifest
from ..data.fold_requirements import Carriers, coverage_problems, set_aside_rare
from ..data.splits import metric_requirements
from ..data.table import class_index
from ..utils.io import read_csv
from .auditor import Auditor, Split


def check_folds(a: Auditor, path: Path) -> None:
    rel = a.rel(path)
    manifest = read_manifest(path)
    frame = read_csv(path / "folds.csv", "folds file")
    missing = [c for c in ("id", "fold") if c not in frame.columns]
    if missing:
        a.add("folds", "FAIL", f"{rel}/folds.csv", f"missing column(s) {missing}")
        return
    ids = frame["id"].tolist()
    n_splits = int(manifest.get("config", {}).get("folds", {}).get("n_splits", 0))
    dup = frame.index[frame["id"].duplicated()]
    if len(dup):
        first = ids[dup[0]]
        a.add("folds", "FAIL", f"{rel}/folds.csv", f"id {first!r} is in {frame['id'].eq(first).sum()} rows "
                                                   f"({len(dup)} repeated id(s)): a row in two folds",
              rows=[ids[i] for i in dup], count=len(dup))
        return
    fold = pd.to_numeric(frame["fold"], errors="coerce")
    bad = frame.index[fold.isna() | (fold < 0) | (fold >= max(n_splits, 1)) | (fold % 1 != 0)]
    if len(bad):
        a.add("folds", "FAIL", f"{rel}/folds.csv", f"id {ids[bad[0]]!r} has fold {frame['fold'][bad[0]]!r}, "
                                                   f"not one of 0..{n_splits - 1} ({len(bad)} row(s))",
              rows=[ids[i] for i in bad], count=len(bad))
        return
    folds = fold.to_numpy(np.int64)
    sizes = np.bincount(folds, minlength=n_splits).tolist()
    a.splits[path.name] = split = Split(path, rel, manifest, ids, folds, n_splits)
    recorded = manifest.get("metrics", {}).get("fold_sizes")
    empty = [k for k, s in enumerate(sizes) if s == 0]
    if empty:
        a.add("folds", "FAIL", f"{rel}/folds.csv", f"validation fold(s) {empty} hold no train row")
    elif recorded is not None and recorded != sizes:
        a.add("folds", "FAIL", f"{rel}/folds.csv", f"fold sizes {sizes} differ from its manifest's {recorded}: "
                                                   f"the file changed after it was written")
    else:
        method = manifest.get("metrics", {}).get("method", manifest["config"]["folds"].get("method"))
        a.add("folds", "PASS", split.rel, f"{len(ids)} train ids, each in exactly one of {n_splits} folds "
                                          f"(sizes {'/'.join(map(str, sizes))}; {method})")


def check_classes(a: Auditor, split: Split) -> None:
    ctx, comp = a.ctx, a.ctx.cfg.competition
    if split.ids != ctx.train.ids:
        a.add("classes", "SKIP", split.csv, f"its ids are not the current {ctx.train.source}'s: no targets")
        return
    if comp.task == "regression":  # no classes to count (the folds stratify on quantile bins of the target)
        a.add("classes", "SKIP", split.csv, "regression: no classes per fold")
        return
    classes = list(comp.classes)
    # single-label: class indices, never an (N, K) one-hot (herbarium: 840k x 15,501)
    y = ctx.targets if comp.task == "multilabel" else class_index(ctx.train, comp)
    rows = Carriers(multihot=y) if comp.task == "multilabel" else Carriers(y, width=len(classes))
    counts = rows.per_part(split.folds, split.n_splits).astype(np.int64)
    table = pd.DataFrame(counts, index=pd.Index(classes, name="tag" if comp.task == "multilabel" else "class"),
                         columns=[f"fold {k}" for k in range(split.n_splits)])
    table["all"] = counts.sum(1)
    title = "positive rows per tag" if comp.task == "multilabel" else "rows per class"
    a.report.tables.append((f"{title} in each validation fold: {split.csv}", table))
    metric = split.manifest.get("config", {}).get("competition", {}).get("metric", comp.metric)
    groups = ctx.train.frame[comp.group_col].to_numpy() if comp.group_col else None
    needs, _ = set_aside_rare(metric_requirements(y, comp.task, metric, classes), split.n_splits, groups)  # rare: WARN
    needed = coverage_problems(split.folds, split.n_splits, needs)
    for k, r in needed:
        a.add("classes", "FAIL", split.csv, f"{r.gap(k)}; {r.why} it in every validation fold "
                                            f"(its validation metric is NaN or meaningless)")
    kind = "tag" if comp.task == "multilabel" else "class"
    reported = {(k, r.what) for k, r in needed if not r.negative}  # already a FAIL
    absent = [(k, c) for j, c in enumerate(classes) for k in range(split.n_splits)
              if counts[j, k] == 0 and counts[j].sum() > 0 and (k, f"{kind} {c!r}") not in reported]
    if absent:
        shown = ", ".join(f"{c!r} in fold {k}" for k, c in absent[:5])
        a.add("classes", "WARN", split.csv, f"{len(absent)} class/fold gap(s): {shown} "
                                            f"(not needed by the metric {metric})")
    if not needed and not absent:
        a.add("classes", "PASS", split.csv, f"every {kind} with train rows is in every validation fold "
                                            f"(see the table)")


def check_groups(a: Auditor, split: Split) -> None:
    """With competition.group_col: every group's rows in one validation fold (a patient in two folds is a leak the
    CV rewards); FAIL naming the first groups that straddle folds."""
    ctx, comp = a.ctx, a.ctx.cfg.competition
    if not comp.group_col:
        return
    if split.ids != ctx.train.ids:
        a.add("groups", "SKIP", split.csv, f"its ids are not the current {ctx.train.source}'s: no groups")
        return
    groups = pd.Series(split.folds).groupby(ctx.train.frame[comp.group_col].to_numpy()).nunique()
    straddling = groups[groups > 1]
    if len(straddling):
        shown = ", ".join(f"{g!r} ({n} folds)" for g, n in straddling.head(3).items())
        a.add("groups", "FAIL", split.csv, f"{len(straddling)} of the {len(groups)} {comp.group_col} groups "
                                           f"straddle validation folds: {shown}; their rows leak between train and "
                                           f"validation", count=len(straddling))
    else:
        a.add("groups", "PASS", split.csv, f"each of the {len(groups)} {comp.group_col} groups in one validation fold")
