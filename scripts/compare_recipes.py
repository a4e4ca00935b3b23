"""Benchmark: run `make all` for several experiments at one budget and print one table (OOF CV, held-out test
score, wall time). Not a test; the figures in the README come from it, e.g.
    python scripts/compare_recipes.py --comp flowers --exps baseline bag-of-tricks rsb focal-ohem swa snapshots \\
        --overrides train.epochs=8 folds.n_splits=3
"""
import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from foldstack.artifacts import latest, read_manifest
from foldstack.pipeline import context


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--comp", required=True)
    p.add_argument("--exps", nargs="+", required=True)
    p.add_argument("--overrides", nargs="*", default=[], help="applied to every experiment (the shared budget)")
    p.add_argument("--root", default=".")
    args = p.parse_args()
    root = Path(args.root).resolve()
    metric = context(args.comp, overrides=args.overrides, root=root).cfg.competition.metric
    rows = []
    for exp in args.exps:
        t0 = time.time()
        proc = subprocess.run(["make", "--no-print-directory", "-C", str(root), "all", f"COMP={args.comp}",
                               f"EXP={exp}", f"OVERRIDES={' '.join(args.overrides)}"], capture_output=True, text=True)
        seconds = time.time() - t0
        if proc.returncode:
            print(f"{exp}: make all failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        oof = read_manifest(latest(root, "predict", args.comp, exp))["metrics"][metric]
        test = re.search(rf"{metric} = ([0-9.]+)", proc.stdout)
        rows.append((exp, oof, float(test.group(1)) if test else float("nan"), seconds))
        print(f"{exp}: OOF {metric} {oof:.4f}, test {rows[-1][2]:.4f}, {seconds / 60:.1f} min", flush=True)
    print(f"\n| experiment | OOF {metric} | test {metric} | wall time |\n|---|---|---|---|")
    for exp, oof, test, seconds in rows:
        print(f"| {exp} | {oof:.4f} | {test:.4f} | {seconds / 60:.1f} min |")


if __name__ == "__main__":
    main()
