"""`make all COMP=<name> BUDGET=10m`: the plan (made once, `make plan`), then the whole pipeline with it as the
experiment, in this process; at the end planned against actual seconds per stage, the watchdog's interventions and,
with LABELS, the score. A rerun reuses the plan and every finished artifact: it is a no-op."""
import json
import logging
import time

from .. import pipeline
from ..artifacts import read_manifest
from ..submission import score_submission, validate_submission
from ..utils.io import read_csv
from . import plan as planning
from .lineage import fold_dirs

log = logging.getLogger("foldstack")


def add_arguments(p) -> None:
    planning.add_arguments(p)
    p.add_argument("--labels", default=None, help="CSV of the true test labels: score submission.csv at the end")


def planned_seconds(data: dict) -> dict:
    """The plan's estimate in the stages' terms (the cache is built by the first stage that reads images: train)."""
    est = data["estimate"]
    return dict(plan=est["plan"], folds=est["fixed"] / 4, train=est["cache"] + est["train"], oof=est["predict"],
                stack=est["fixed"] / 2, submit=est["fixed"] / 4)


def report(data: dict, actual: dict, total_s: float) -> list[str]:
    planned = planned_seconds(data)
    lines = [f"{'stage':<8} {'planned':>9} {'actual':>9}"]
    for name in planned:
        if name in actual:
            lines.append(f"{name:<8} {planned[name]:>8.0f}s {actual[name]:>8.0f}s")
    lines.append(f"{'total':<8} {sum(planned.values()):>8.0f}s {total_s:>8.0f}s   (budget {data['budget_s']:.0f}s)")
    return lines


def run(ctx):
    t0 = time.time()
    exp, yaml_path = planning.run(ctx)
    actual = {"plan": time.time() - t0}
    data = json.loads(yaml_path.with_suffix(".plan.json").read_text())
    run_ctx = pipeline.context(ctx.comp, exp, overrides=ctx.args.set, root=ctx.root)
    log.info(f"budget: running EXP={exp} ({yaml_path})")
    actual.update(pipeline.run(run_ctx, on_stage=lambda name, s: log.info(f"budget: {name} done in {s:.0f}s")))
    total = time.time() - t0
    for line in report(data, actual, total):
        log.info(f"budget: {line}")
    for d in fold_dirs(run_ctx).dirs:
        dog = read_manifest(d)["metrics"].get("watchdog")
        if dog:
            log.warning(f"budget: {d.name} was stopped by the watchdog after {dog['seconds']:.0f}s "
                        f"(limit {dog['time_limit']:.0f}s): {dog['epochs_run']} of {dog['epochs_planned']} epochs")
    if ctx.args.labels:
        comp, sub = run_ctx.cfg.competition, read_csv(ctx.root / "submission.csv", "submission")
        validate_submission(sub, run_ctx.test.frame, comp, source="submission.csv")
        value = score_submission(sub, read_csv(ctx.root / ctx.args.labels, "labels file"), comp, ctx.args.labels)
        log.info(f"budget: submission.csv {comp.metric} = {value:.5f} against {ctx.args.labels} "
                 f"({total:.0f}s of the {data['budget_s']:.0f}s budget)")
    return exp
