"""Benchmark: what comes after `make folds` at herbarium-2022's size (default 839,772 train rows, 210,407 test
rows, 15,501 classes, macro F1, 5 folds) with predict.keep_top (each row's 20 best classes, targets as class
indices; wide.py). Not a test. Two parts:

--part stages (default): in this process, the library calls `make oof`, `make stack`, `make submit`, `make pseudo`
and `make report` make on that data, fed with two experiments' synthetic kept predictions (the true class first in
about 60% of the rows, like a network of that accuracy): targets, the predictions artifact written and read back,
the OOF score per fold, the mean blend and its level report, the saved level 2 checked, the submission built and
scored, the pseudo-label selection (top_fraction), and the report's per-class, calibration, distribution and mistakes tables.
Prints each step's seconds and the process's peak RSS after it, and the artifact sizes on disk.

--part batch: what keeping the best classes costs a prediction batch: the (batch, 15,501) softmax cut to its 20
best (TopProbs.from_dense, which predict_probs runs on every batch) against the batch's dense float32 copy that
the dense path keeps, per batch of 256 rows.

    python scripts/bench_wide.py                        # herbarium's size, about 2 minutes, under 2 GB
    python scripts/bench_wide.py --rows 200000 --test-rows 50000 --classes 5000
    python scripts/bench_wide.py --part batch

--part pipeline: the training path at herbarium's number of classes: `make all`'s stage scripts (folds, train,
oof, stack, submit), each in its own process, on a synthetic competition of 15,501 classes x 2 train rows (31,002
rows of 16x16 PNGs, 2,000 test rows; timm's test_resnet, 1 epoch, 2 folds), first with predict.keep_top=20, then
with 0 (dense) on the same trained models. Prints each stage's seconds and peak RSS.
    python scripts/bench_wide.py --part pipeline
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from foldstack.artifacts import write_manifest
from foldstack.config.competition import Competition
from foldstack.config.levels import Stack
from foldstack.data.table import Table, class_index
from foldstack.metrics import comp_score, fold_scores
from foldstack.predictions import Predictions, load_predictions, rows_record, write_predictions
from foldstack.pseudo.select import select_pseudo
from foldstack.report import experiment as analysis
from foldstack.stacking.blend import blend_cv
from foldstack.stacking.persist import save_checked
from foldstack.stacking.report import level_report
from foldstack.submission import build_submission, score_submission
from foldstack.wide import ClassTargets, TopProbs

from bench_classes import peak_gb, timed  # scripts/: one way to print a step's seconds and peak RSS


def kept(labels: np.ndarray, n_classes: int, top: int, hit: float, rng) -> TopProbs:
    """Each row's `top` best classes: the true one first in a `hit` share of the rows, else somewhere or nowhere;
    probabilities decreasing, summing to under 1."""
    n = len(labels)
    offsets = np.sort(rng.choice(np.arange(1, n_classes), size=top, replace=False))
    classes = (labels[:, None] + offsets[None, :] + rng.integers(0, n_classes, (n, 1))) % n_classes
    first = rng.random(n) < hit
    classes[first, 0] = labels[first]
    classes[first, 1:] = (labels[first, None] + offsets[None, :-1]) % n_classes  # distinct from the label
    probs = np.sort(rng.dirichlet(np.ones(top + 1), n).astype(np.float32)[:, :top], 1)[:, ::-1]
    return TopProbs(classes.astype(np.int32), np.ascontiguousarray(probs), n_classes)


def stages(args) -> None:
    rng = np.random.default_rng(0)
    names = [str(c) for c in range(args.classes)]
    comp = Competition(task="multiclass", classes=names, target_cols=["category_id"], id_col="Id", metric="macro_f1",
                       submission_columns=["Id", "Predicted"], submission_format="label")
    labels = rng.integers(0, args.classes, args.rows)
    frame = pd.DataFrame({"Id": [str(i) for i in range(args.rows)], "category_id": np.array(names)[labels]})
    table = Table(frame["Id"].tolist(), [], frame, "synthetic train")
    test_ids = [f"t{i}" for i in range(args.test_rows)]
    folds = (np.arange(args.rows) % args.folds).astype(np.int32)
    print(f"{args.rows:,} train rows, {args.test_rows:,} test rows, {args.classes:,} classes, {args.top} kept a row, "
          f"{args.folds} folds, metric {comp.metric}\n")
    print("| step | seconds | peak RSS GB |\n|---|---|---|")
    print(f"| synthetic table built | - | {peak_gb():.2f} |")
    y = timed("targets: class indices from the label column (ClassTargets)",
              lambda: ClassTargets(class_index(table, comp), args.classes))
    test_labels = rng.integers(0, args.classes, args.test_rows)
    experiments = timed("two experiments' kept OOF and test predictions (synthetic)", lambda: [
        Predictions(kept(y.labels, args.classes, args.top, hit, rng), kept(test_labels, args.classes, args.top, hit, rng),
                    folds) for hit in (0.6, 0.55)])
    with tempfile.TemporaryDirectory() as tmp:
        folders = []
        for e, p in enumerate(experiments):
            folder = Path(tmp) / f"exp{e}"
            folder.mkdir()
            if e == 0:
                timed("write one experiment's predictions (make oof's artifact)",
                      lambda: write_predictions(folder, table.ids, test_ids, names, p))
            else:
                write_predictions(folder, table.ids, test_ids, names, p)
            write_manifest(folder, "predict", folder.name, {}, fold_key="bench", rows=rows_record(table.ids, test_ids))
            folders.append(folder)
        size = sum(f.stat().st_size for f in folders[0].glob("*.npy")) / 2**20
        print(f"| (one experiment's .npy files on disk: {size:.0f} MB) | - | - |")
        preds = timed("read both back (load_predictions, checked)",
                      lambda: [load_predictions(f, table.ids, test_ids, args.classes) for f in folders])
    del experiments
    timed(f"OOF {comp.metric} per fold and pooled (make oof's CV)",
          lambda: (fold_scores(comp, y, preds[0].oof, folds), comp_score(comp, y, preds[0].oof)))
    fit = timed("mean blend of the two, OOF and test (make stack)", lambda: blend_cv(
        "mean", [p.oof for p in preds], [p.test for p in preds], y, folds, comp))
    levels = {f"exp{e}": ("single model", p.oof, p.test) for e, p in enumerate(preds)}
    levels["blend:mean"] = ("blend", fit.oof, fit.test)
    report = timed("level report: every level's CV per fold and pooled", lambda: level_report(
        levels, y, folds, comp, "blend:mean"))
    with tempfile.TemporaryDirectory() as tmp:
        timed("level 2 saved and checked against its test predictions",
              lambda: save_checked(Path(tmp) / "level2", fit.model, [p.test for p in preds], None, fit.test))
    sub = timed("submission built (Id,Predicted)", lambda: build_submission(comp, test_ids, fit.test))
    truth = pd.DataFrame({"Id": test_ids, "Predicted": np.array(names)[test_labels]})
    timed("submission scored against labels (make score)",
          lambda: score_submission(sub, truth.rename(columns={"Predicted": "category_id"}), comp, "labels"))
    picked = timed("pseudo-label selection (the surest 30% of each predicted class)",
                   lambda: select_pseudo(fit.test, "multiclass", "top_fraction", fraction=0.3))
    timed("report: per-class table", lambda: analysis.per_class(y, fit.oof, comp))
    timed("report: calibration", lambda: analysis.calibration(y, fit.oof, "multiclass"))
    timed("report: class distribution", lambda: analysis.class_distribution(y, folds, fit.test, comp))
    timed("report: worst mistakes", lambda: analysis.worst_mistakes(y, fit.oof, folds, table.ids, comp))
    print(f"\nCV: {', '.join(f'{r.level} {r.cv:.4f}' for r in report.itertuples())}; "
          f"{len(picked.rows):,} pseudo rows")
    dense = args.rows * args.classes * 4 / 1e9
    print(f"For scale: one dense float32 (train rows x classes) matrix is {dense:.1f} GB.")


def batch(args) -> None:
    import torch

    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(0, 3, (args.batch, args.classes)).astype(np.float32))
    probs = torch.softmax(logits, 1)
    for label, fn in (("dense: the batch's float32 copy (the dense path keeps it)", lambda: probs.numpy().copy()),
                      (f"kept: TopProbs.from_dense(batch, {args.top})", lambda: TopProbs.from_dense(probs.numpy(),
                                                                                                   args.top))):
        fn()
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            fn()
        seconds = (time.perf_counter() - t0) / args.repeats
        print(f"{label}: {seconds * 1e3:.2f} ms a batch of {args.batch} x {args.classes:,}")
    rows = 839_772
    print(f"kept per row: {args.top * 8} bytes (int32 class + float32 probability); dense: {args.classes * 4:,} "
          f"bytes; herbarium's OOF: {rows * args.top * 8 / 1e6:.0f} MB kept, {rows * args.classes * 4 / 1e9:.1f} GB "
          f"dense float32")


PIPELINE = ("01_folds.py", "02_train.py", "03_predict.py", "05_stack.py", "06_submit.py")
MEASURE = """import resource, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print(f"PEAK_RSS_GB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f}", file=sys.stderr)
"""


def synthetic_competition(folder: Path, n_classes: int, per_class: int, test_rows: int, rng) -> None:
    """input/<name>/: train/<id>.png 16x16 images whose colour codes the class (with noise), train.csv Id,label,
    test/ and sample_submission.csv Id,label."""
    import cv2

    colours = rng.integers(0, 256, (n_classes, 3))
    labels = np.repeat(np.arange(n_classes), per_class)
    for split, classes in (("train", labels), ("test", rng.integers(0, n_classes, test_rows))):
        (folder / split).mkdir(parents=True)
        for i, c in enumerate(classes):
            image = np.clip(colours[c] + rng.normal(0, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / split / f"{split}{i}.png"), image)
    pd.DataFrame({"Id": [f"train{i}" for i in range(len(labels))], "label": [f"c{c}" for c in labels]}).to_csv(
        folder / "train.csv", index=False)
    pd.DataFrame({"Id": [f"test{i}" for i in range(test_rows)], "label": "c0"}).to_csv(
        folder / "sample_submission.csv", index=False)


def pipeline(args) -> None:
    """`make all`'s stage scripts on a synthetic competition of --classes classes, each stage in its own process
    (its peak RSS), with predict.keep_top=--top, then with 0 (dense) on the same models."""
    import subprocess
    import sys

    root = Path(args.root or tempfile.mkdtemp(prefix="bench_wide_"))
    scripts = Path(__file__).resolve().parent
    if not (root / "input" / "wide").is_dir():
        synthetic_competition(root / "input" / "wide", args.classes, args.per_class, args.test_rows,
                              np.random.default_rng(0))
    settings = ["model.name=test_resnet", "train.epochs=1", "folds.n_splits=2", "data.img_size=32",
                "data.batch_size=64", "train.warmup_epochs=0", "predict.tta=[]", "stack.compare=[mean]",
                "competition.metric=macro_f1", "model.pretrained=false"]
    print(f"{args.classes:,} classes x {args.per_class} train rows each, {args.test_rows:,} test rows, in {root}\n")
    print("| predict.keep_top | stage | seconds | peak RSS GB |\n|---|---|---|---|")
    for top in (args.top, 0):
        for script in PIPELINE:
            cmd = [sys.executable, "-c", MEASURE, str(scripts / script), "--root", str(root), "--comp", "wide",
                   "--set", *settings, f"predict.keep_top={top}"]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            peak = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("PEAK_RSS_GB")]
            print(f"| {top} | {script} | {seconds:.1f} | {peak[0] if peak else '?'} |", flush=True)
            if proc.returncode != 0:
                print(proc.stderr[-3000:])
                return
            for line in proc.stderr.splitlines():
                if "OOF CV" in line or "fold 0 done" in line:
                    print(f"|  | {line.split('] ')[-1][:110]} | | |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=["stages", "batch", "pipeline"], default="stages")
    p.add_argument("--per-class", type=int, default=2, help="pipeline: train rows per class")
    p.add_argument("--root", help="pipeline: the project folder (default: a new temporary one)")
    p.add_argument("--rows", type=int, default=839_772)
    p.add_argument("--test-rows", type=int, default=210_407)
    p.add_argument("--classes", type=int, default=15_501)
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    if args.part == "pipeline" and args.test_rows == 210_407:
        args.test_rows = 2_000
    {"stages": stages, "batch": batch, "pipeline": pipeline}[args.part](args)


if __name__ == "__main__":
    main()
