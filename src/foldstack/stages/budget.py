"""`make all COMP=<name> BUDGET=10m`: the plan (made once), then the whole pipeline with it in this process, each fold
given the epochs that fit what is left (budget/tracking.py); at the end planned against actual seconds per stage,
the watchdog's interventions and, with LABELS, the score. A rerun reuses the plan and every artifact: a no-op."""
import json
import logging
import time

from .. import pipeline
from ..artifacts import read_manifest
from ..budget.experiment import add_arguments as plan_arguments
from ..budget.experiment import plan_experiment
from ..budget.tracking import FoldBudget, report
from ..lineage import fold_dirs
from ..submission import score_file

log = logging.getLogger("foldstack")


def add_arguments(p) -> None:
    plan_arguments(p)
    p.add_argument("--labels", default=None, help="CSV of the true test labels: score submission.csv at the end")


def run(ctx):
    t0 = time.time()
    exp, yaml_path = plan_experiment(ctx)
    actual = {"plan": time.time() - t0}
    data = json.loads(yaml_path.with_suffix(".plan.json").read_text())
    run_ctx = pipeline.context(ctx.comp, exp, overrides=ctx.args.set, root=ctx.root)
    log.info(f"budget: running EXP={exp} ({yaml_path})")
    folds = FoldBudget.from_plan(data, t0)
    actual.update(pipeline.run(run_ctx, on_stage=lambda name, s: log.info(f"budget: {name} done in {s:.0f}s"),
                               stage_args={"train": {"budget": folds}}))
    total = time.time() - t0
    for line in report(data, actual, total):
        log.info(f"budget: {line}")
    for d in fold_dirs(run_ctx).dirs:
        dog = read_manifest(d)["metrics"].get("watchdog")
        if dog:
            log.warning(f"budget: {d.name} was stopped by the watchdog after {dog['seconds']:.0f}s "
                        f"(limit {dog['time_limit']:.0f}s): {dog['epochs_run']} of {dog['epochs_planned']} epochs")
    if ctx.args.labels:
        comp = run_ctx.cfg.competition
        value = score_file(ctx.root, "submission.csv", ctx.args.labels, run_ctx.test.frame, comp)
        log.info(f"budget: submission.csv {comp.metric} = {value:.5f} against {ctx.args.labels} "
                 f"({total:.0f}s of the {data['budget_s']:.0f}s budget)")
    return exp
