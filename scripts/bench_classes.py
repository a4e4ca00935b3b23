"""Benchmark: fold assignment and its guard at herbarium-2022's scale of classes (default 840,000 train rows,
15,501 classes, long-tailed, 2,000 singletons, macro F1, 5 folds). A synthetic train table goes in process
through what `make folds` and `make audit` do with it: class index from the label column (no one-hot), the
metric's requirements, assign_folds (rare classes pooled, StratifiedKFold, coverage check, rare-class log line) and
the audit's per-fold class counts. Prints each step's seconds and the process's peak RSS after it. Not a test, e.g.
    python scripts/bench_classes.py --rows 200000 --classes 5000 --singletons 600

--multilabel: imet-2020's scale of tags instead (default 142,119 rows, 3,474 tags, about 4.5 a row, long-tailed,
200 tags of one row, micro F1): the float32 targets `make folds` holds, then assign_folds with folds.method
(--method; `auto` picks by size) and the per-tag balance of its folds, e.g. iterative stratification at a size
where it runs:
    python scripts/bench_classes.py --multilabel --rows 10000 --classes 1000 --method multilabel_stratified
"""
import argparse
import logging
import resource
import time

import numpy as np
import pandas as pd

from foldstack.config.competition import Competition
from foldstack.data.fold_requirements import Carriers, coverage_problems, set_aside_rare
from foldstack.data.multilabel_folds import tag_deviation
from foldstack.data.splits import assign_folds, metric_requirements
from foldstack.data.table import Table, class_index, encode_targets


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def timed(label: str, fn):
    t0 = time.perf_counter()
    out = fn()
    print(f"| {label} | {time.perf_counter() - t0:.2f} | {peak_gb():.2f} |", flush=True)
    return out


def long_tail(rows: int, classes: int, singletons: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(class index of each row, shuffled; rows per class): `singletons` classes of one row, the others
    log-normal (many of 2-10 rows, a few of hundreds or thousands), summing to `rows`."""
    rest = rng.lognormal(0.0, 1.2, classes - singletons)
    counts = np.maximum(2, np.round(rest / rest.sum() * (rows - singletons))).astype(np.int64)
    counts[np.argmax(counts)] += rows - singletons - counts.sum()  # exact total, on the largest class
    counts = np.concatenate([np.ones(singletons, np.int64), counts])
    return rng.permutation(np.repeat(np.arange(classes), counts)), counts


def tag_table(rows: int, tags: int, singletons: int, rng, per_row: float = 4.5) -> np.ndarray:
    """(rows, tags) bool: about `per_row` tags a row (a few rows none), the tags' rows long-tailed as long_tail's
    classes, `singletons` tags on one row each."""
    tag_of_pair, _ = long_tail(int(rows * per_row), tags, singletons, rng)
    y = np.zeros((rows, tags), bool)
    y[rng.integers(0, rows, len(tag_of_pair)), tag_of_pair] = True
    return y


def multilabel(args) -> None:
    y = tag_table(args.rows, args.classes, args.singletons, np.random.default_rng(0))
    names = [str(c) for c in range(args.classes)]
    rows, tags = np.nonzero(y)
    attribute_ids = pd.Series(np.array(names)[tags]).groupby(rows).agg(" ".join)
    attribute_ids = attribute_ids.reindex(range(args.rows), fill_value="")
    frame = pd.DataFrame({"id": [str(i) for i in range(args.rows)], "attribute_ids": attribute_ids.to_numpy()})
    comp = Competition(task="multilabel", classes=names, target_cols=["attribute_ids"], id_col="id", metric=args.metric)
    table = Table(frame["id"].tolist(), [], frame, "synthetic train")
    counts = y.sum(0)
    print(f"{args.rows:,} rows x {args.classes:,} tags ({len(rows) / args.rows:.2f} a row, "
          f"{np.sum(counts < args.folds):,} tags with fewer rows than {args.folds} folds, largest {counts.max():,} "
          f"rows); folds.method={args.method}\n")
    del y, rows, tags
    print("| step | seconds | peak RSS GB |\n|---|---|---|")
    print(f"| synthetic table built | - | {peak_gb():.2f} |")
    timed("import scikit-learn's splitters (start-up, once a process)", lambda: __import__("sklearn.model_selection"))
    targets = timed("float32 targets from the tag column (encode_targets)", lambda: encode_targets(table, comp))
    needs = timed(f"metric requirements ({args.metric})",
                  lambda: metric_requirements(targets, comp.task, comp.metric, names))
    folds = timed(f"assign_folds ({args.method})", lambda: assign_folds(
        args.rows, args.folds, 42, args.method, None, None, targets, needs, names, "synthetic train"))
    print(f"fold sizes {np.bincount(folds).tolist()}; how far a tag's fold share is from 1/{args.folds} (largest, "
          f"mean over tags):")
    for least in (args.folds, 20, 100, 1000):
        deviation = tag_deviation(Carriers(multihot=targets), folds, args.folds, least)
        if len(deviation):
            print(f"  tags of {least}+ rows ({len(deviation):,}): {deviation.max():.3f}, {deviation.mean():.3f}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--multilabel", action="store_true", help="tags (imet-2020) instead of classes (herbarium-2022)")
    p.add_argument("--rows", type=int)
    p.add_argument("--classes", type=int, help="classes, or tags with --multilabel")
    p.add_argument("--singletons", type=int)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--metric")
    p.add_argument("--method", default="auto", help="folds.method (--multilabel)")
    args = p.parse_args(argv)
    defaults = (142_119, 3_474, 200, "micro_f1") if args.multilabel else (840_000, 15_501, 2_000, "macro_f1")
    for key, value in zip(("rows", "classes", "singletons", "metric"), defaults):
        setattr(args, key, value if getattr(args, key) is None else getattr(args, key))
    logging.basicConfig(level=logging.INFO, format="  log: %(message)s")
    if args.multilabel:
        return multilabel(args)
    rng = np.random.default_rng(0)
    labels, counts = long_tail(args.rows, args.classes, args.singletons, rng)
    names = [str(c) for c in range(args.classes)]
    frame = pd.DataFrame({"Id": [str(i) for i in range(args.rows)], "category_id": np.array(names)[labels]})
    comp = Competition(task="multiclass", classes=names, target_cols=["category_id"], id_col="Id",
                       metric=args.metric)
    table = Table(frame["Id"].tolist(), [], frame, "synthetic train")
    print(f"{args.rows:,} rows x {args.classes:,} classes ({np.sum(counts == 1):,} singletons, "
          f"{np.sum(counts < args.folds):,} with fewer rows than {args.folds} folds, largest {counts.max():,}); "
          f"an (N,) bool mask per class would take {args.rows * args.classes / 1e9:.1f} GB, a float32 one-hot "
          f"{args.rows * args.classes * 4 / 1e9:.1f} GB\n")
    print("| step | seconds | peak RSS GB |\n|---|---|---|")
    print(f"| synthetic table built | - | {peak_gb():.2f} |")
    timed("import scikit-learn's splitters (start-up, once a process)", lambda: __import__("sklearn.model_selection"))
    index = timed("class index from the label column (class_index)", lambda: class_index(table, comp))
    assert np.array_equal(index, labels)
    needs = timed(f"metric requirements ({args.metric})",
                  lambda: metric_requirements(index, comp.task, comp.metric, names))
    folds = timed("assign_folds (rare pooled, StratifiedKFold, coverage, log)",
                  lambda: assign_folds(args.rows, args.folds, 42, "auto", index, None, None, needs, names,
                                       "synthetic train"))

    def audit():
        Carriers(index, width=len(names)).per_part(folds, args.folds)
        kept, _ = set_aside_rare(metric_requirements(index, comp.task, comp.metric, names), args.folds, None)
        return coverage_problems(folds, args.folds, kept)
    gaps = timed("audit: per-fold class counts and coverage", audit)
    print(f"fold sizes {np.bincount(folds).tolist()}; {len(gaps)} fold/class gaps among the classes the metric "
          f"needs")


if __name__ == "__main__":
    main()
