"""Benchmark: every level of this config's stack (single models, without/with TTA, blends, stackers) scored on
OOF and against a held-out labels file, as one markdown table. A competitor has no test labels; we use it to
check that OOF CV ranks the levels the way the held-out test does, e.g.
    python scripts/score_levels.py --comp flowers --labels input/flowers/test_labels.csv \\
        --set stack.experiments=[baseline,swa] stack.method=xgboost
"""
import numpy as np
import pandas as pd

from foldstack.artifacts import is_complete, read_manifest
from foldstack.cli import run_stage
from foldstack.errors import PipelineError
from foldstack.lineage import stack_dir
from foldstack.submission import build_submission, score_submission
from foldstack.utils.io import read_csv


def score_levels(ctx) -> None:
    comp, path = ctx.cfg.competition, stack_dir(ctx).path
    if not is_complete(path):
        raise PipelineError(f"no stack for this config ({path}): run `make stack` with the same settings first")
    labels = read_csv(ctx.root / ctx.args.labels, "labels file")
    report = pd.read_csv(path / "report.csv").fillna({"output": ""})
    tests = np.load(path / "levels_test.npz")
    print(f"{ctx.comp}: stack of {list(read_manifest(path)['inputs'])} -> {path}\n")
    sized = "params_M" in report  # single models: size and inference speed (make oof's images/s)
    print(f"| level | kind | OOF {comp.metric} per fold (mean ± std) | OOF {comp.metric} | test {comp.metric} |"
          + (" params (M) | images/s |" if sized else ""))
    print("|---|---|---|---|---|" + ("---|---|" if sized else ""))
    for row in report.itertuples():
        sub = build_submission(comp, ctx.test.ids, tests[row.level].astype(np.float64))
        test = score_submission(sub, labels, comp, ctx.args.labels)
        mark = " (submitted)" if row.output == "*" else ""
        size = (f" {row.params_M:.2f} | {row.images_per_s:.0f} |".replace("nan", "") if sized else "")
        print(f"| {row.level}{mark} | {row.kind} | {row.mean:.5f} ± {row.std:.5f} | {row.cv:.5f} | {test:.5f} |"
              + size)


def add_arguments(p):
    p.add_argument("--labels", required=True, help="CSV with the true test labels (id + target columns)")


if __name__ == "__main__":
    run_stage(score_levels, __doc__, add_arguments=add_arguments)
