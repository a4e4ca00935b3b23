"""Benchmark: fold assignment and its guard at herbarium-2022's scale of classes (default 840,000 train rows,
15,501 classes, long-tailed, 2,000 singletons, macro F1, 5 folds). A synthetic train table goes in process
through what `make folds` and `make audit` do with it: class index from the label column (no one-hot), the
metric's requirements, assign_folds (rare classes pooled, StratifiedKFold, coverage check, rare-class log line) and
the audit's per-fold class counts. Prints each step's seconds and the process's peak RSS after it. Not a test, e.g.
    python scripts/bench_classes.py --rows 200000 --classes 5000 --singletons 600
"""
import argparse
import logging
import resource
import time

import numpy as np
import pandas as pd

from foldstack.config.competition import Competition
from foldstack.data.fold_requirements import Carriers, coverage_problems, set_aside_rare
from foldstack.data.splits import assign_folds, metric_requirements
from foldstack.data.table import Table, class_index


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


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=840_000)
    p.add_argument("--classes", type=int, default=15_501)
    p.add_argument("--singletons", type=int, default=2_000)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--metric", default="macro_f1")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="  log: %(message)s")
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
