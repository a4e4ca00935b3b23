"""Measurement: what model.meta_head (tabular columns into the network) gains where a column carries signal.

Builds input/flowers-meta/ from the flowers data (train.csv id,label; train/ and test/ images; test_labels.csv):
the images are symlinked, not copied, and the tables get a column `garden` that is the true label with probability
--signal, else a class drawn at random (seeded; the test rows drawn the same way from test_labels.csv, written
to test.csv). Then `make all COMP=flowers-meta` runs twice with the same overrides, model.meta_head 0 and then
--width, and a markdown table prints each run's OOF metric, its submission's metric against test_labels.csv
(`make score`, the competition's metric) and its seconds. stack.method is a blend (mean) so only the network
differs. Not a test, e.g.
    python scripts/measure_meta_head.py --epochs 6 --img-size 64 --model resnet10t
    python scripts/measure_meta_head.py --limit 60 --epochs 1 --img-size 32   # a smoke run on 60 + 60 rows
"""
import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

COMP = "flowers-meta"
PREDICTIONS = re.compile(r"(?:wrote OOF \+ test predictions ->|predictions up to date:) (\S+)")


def garden(labels: pd.Series, classes: list, signal: float, rng: np.random.Generator) -> list:
    """The label with probability `signal`, else a class drawn uniformly (which may be the label too)."""
    keep = rng.random(len(labels)) < signal
    drawn = rng.choice(classes, len(labels))
    return [f"g_{c}" for c in np.where(keep, labels.to_numpy(), drawn)]


def build(source: Path, folder: Path, signal: float, seed: int, limit: int | None) -> None:
    """input/flowers-meta/: train.csv id,garden,label; test.csv id,garden; sample_submission.csv; test_labels.csv;
    train/ and test/ symlinked to the source's."""
    train = pd.read_csv(source / "train.csv", dtype=str)
    labels = pd.read_csv(source / "test_labels.csv", dtype=str)
    if limit:
        train, labels = train.head(limit), labels.head(limit)
    classes, rng = sorted(train.label.unique()), np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    train.insert(1, "garden", garden(train.label, classes, signal, rng))
    train.to_csv(folder / "train.csv", index=False)
    pd.DataFrame({"id": labels.id, "garden": garden(labels.label, classes, signal, rng)}).to_csv(
        folder / "test.csv", index=False)
    pd.DataFrame({"id": labels.id, "label": classes[0]}).to_csv(folder / "sample_submission.csv", index=False)
    labels.to_csv(folder / "test_labels.csv", index=False)
    for name in ("train", "test"):
        link = folder / name
        if not link.is_symlink():
            link.symlink_to((source / name).resolve(), target_is_directory=True)


def run(root: Path, overrides: list[str], metric: str) -> tuple[float, float, float]:
    """(OOF metric, test metric, seconds) of one `make all` with LABELS (it scores the submission)."""
    t0 = time.time()
    proc = subprocess.run(["make", "--no-print-directory", "-C", str(root), "all", f"COMP={COMP}",
                           f"OVERRIDES={' '.join(overrides)}", f"LABELS=input/{COMP}/test_labels.csv"],
                          capture_output=True, text=True)
    seconds = time.time() - t0
    if proc.returncode:
        sys.exit(f"make all failed ({' '.join(overrides)}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    from foldstack.artifacts import read_manifest

    out = proc.stdout + proc.stderr
    oof = read_manifest(root / PREDICTIONS.findall(out)[-1])["metrics"][metric]
    test = re.search(rf"{metric} = ([0-9.]+) against", out)
    return oof, float(test.group(1)) if test else float("nan"), seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default="../shared/data/flowers", help="the flowers data (relative to --root)")
    p.add_argument("--root", default=".")
    p.add_argument("--model", default="resnet10t")
    p.add_argument("--img-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--width", type=int, default=32, help="model.meta_head of the second run")
    p.add_argument("--signal", type=float, default=0.5, help="share of rows whose garden is their label")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="only the first N train and N test rows (a smoke run)")
    p.add_argument("--overrides", nargs="*", default=[], help="more overrides for both runs")
    args = p.parse_args()
    root = Path(args.root).resolve()
    build((root / args.source), root / "input" / COMP, args.signal, args.seed, args.limit)
    common = [f"model.name={args.model}", f"data.img_size={args.img_size}", f"train.epochs={args.epochs}",
              f"folds.n_splits={args.folds}", "model.pretrained=false", "stack.method=mean", *args.overrides]
    from foldstack.pipeline import context

    metric = context(COMP, overrides=common, root=root).cfg.competition.metric
    rows = []
    for width in (0, args.width):
        oof, test, seconds = run(root, [*common, f"model.meta_head={width}"], metric)
        rows.append((width, oof, test, seconds))
        print(f"model.meta_head={width}: OOF {metric} {oof:.4f}, test {test:.4f}, {seconds:.0f}s", flush=True)
    print(f"\nflowers + `garden` (the label with p={args.signal}, else random), {' '.join(common)}\n")
    print(f"| model.meta_head | OOF {metric} | test {metric} | seconds |\n|---|---|---|---|")
    for width, oof, test, seconds in rows:
        print(f"| {width or 'off'} | {oof:.4f} | {test:.4f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
