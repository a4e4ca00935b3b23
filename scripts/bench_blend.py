"""Benchmark: prediction files and level 2 at scale (default 100k rows x 1,000 classes, 2 experiments).
Synthetic probabilities are written as prediction artifacts, loaded back with the row checks, blended every
way and scored; each step's wall time is printed. Not a test, e.g.
    python scripts/bench_blend.py --rows 100000 --classes 1000
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from foldstack.artifacts import write_manifest
from foldstack.config.competition import Competition
from foldstack.metrics import comp_score
from foldstack.predictions import Predictions, load_predictions, rows_record, write_predictions
from foldstack.stacking.blend import blend_cv


def timed(label: str, fn):
    t0 = time.perf_counter()
    out = fn()
    print(f"| {label} | {time.perf_counter() - t0:.2f} |", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--experiments", type=int, default=2)
    p.add_argument("--folds", type=int, default=5)
    args = p.parse_args()
    n, k, rng = args.rows, args.classes, np.random.default_rng(0)
    comp = Competition(task="multiclass", classes=[str(c) for c in range(k)], metric="log_loss")
    labels = rng.integers(0, k, n)
    y = np.zeros((n, k), np.float32)
    y[np.arange(n), labels] = 1
    train_ids = test_ids = [f"img_{i}" for i in range(n)]
    folds = np.arange(n) % args.folds
    print(f"{args.experiments} experiments x {n:,} train + {n:,} test rows x {k:,} classes (float32 on disk)\n")
    print("| step | seconds |\n|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        folders = []
        for e in range(args.experiments):
            logits = rng.standard_normal((n, k), np.float32) + 3 * (1 + e) * y
            probs = np.exp(logits - logits.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            folder = Path(tmp) / f"exp{e}"
            timed(f"write experiment {e} (oof + test .npy)", lambda: write_predictions(
                folder, train_ids, test_ids, comp.classes, Predictions(probs, probs, folds)))
            write_manifest(folder, "predict", f"exp{e}", {}, fold_key="f", rows=rows_record(train_ids, test_ids))
            folders.append(folder)
        preds = timed("load all (ids checked)", lambda: [load_predictions(f, train_ids, test_ids, k) for f in folders])
        oofs, tests = [q.oof for q in preds], [q.test for q in preds]
        for method in ("mean", "geometric", "rank", "weighted"):
            oof = timed(f"blend {method} (OOF + test{', weights fitted per fold' if method == 'weighted' else ''})",
                        lambda: blend_cv(method, oofs, tests, y, folds, comp)).oof
        timed("score the blend (log loss)", lambda: comp_score(comp, y, oof))


if __name__ == "__main__":
    main()
