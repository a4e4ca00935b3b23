"""`make plan`'s work: measure this machine on a short ladder of candidates and write the run that fits the budget
as an experiment, configs/exp/<comp>-budget-<B>.yaml (with its numbers beside it in <comp>-budget-<B>.plan.json).
An existing plan is reused, never redone: delete the file to plan again."""
import dataclasses
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np

from ..config.files import experiment_file, write_experiment
from ..config.loading import deep_merge, read_yaml
from ..errors import PipelineError
from ..utils.io import atomic_write_text
from .planner import Candidate, Facts, Policy, make_plan, parse_budget
from .policy import MODEL_COST, describe, ladder, plan_paths, recipe

log = logging.getLogger("foldstack")


def add_arguments(p) -> None:
    """The arguments of `make plan`, which `make all BUDGET=...` takes too."""
    p.add_argument("--budget", required=True, help="time for the whole run: 90s, 10m, 2h, 1h30m")
    p.add_argument("--models", default="", help="comma-separated timm models for the ladder (default: "
                   + ", ".join(MODEL_COST) + ")")
    p.add_argument("--sizes", default="", help="comma-separated image sizes for the ladder (default: from the "
                   "images' own size)")


def reused_plan(ctx, yaml_path: Path, json_path: Path) -> bool:
    """True (and the plan printed) when this competition's plan is already written."""
    if not (yaml_path.is_file() and json_path.is_file()):
        return False
    data = json.loads(json_path.read_text())
    if data.get("comp") != ctx.comp:
        raise PipelineError(f"{json_path}: planned for {data.get('comp')!r}, not {ctx.comp!r}: delete it")
    log.info(f"plan: reusing {yaml_path} (delete it to plan again)")
    for line in describe(data):
        log.info(f"plan: {line}")
    return True


def candidates(ctx, native: int, gpu: bool) -> list[Candidate]:
    """The ladder: PLAN_MODELS / PLAN_SIZES or the defaults; models whose weights are in weights/ are fine-tuned."""
    from ..models.hub import lookup

    try:
        sizes = [int(v) for v in ctx.args.sizes.split(",") if v]
    except ValueError:
        raise PipelineError(f"PLAN_SIZES={ctx.args.sizes!r}: expected comma-separated integers") from None
    models = [m for m in ctx.args.models.split(",") if m] or list(MODEL_COST)
    cached = {m for m in models if ctx.cfg.model.pretrained is not False and lookup(m, ctx.root, False).weights}
    return ladder(native, gpu, len(ctx.train.ids), models, sizes, frozenset(cached))


def plan_experiment(ctx, policy: Policy = Policy()) -> tuple[str, Path]:
    """Plan (or reuse the plan) for ctx.args.budget; returns (experiment name, its YAML)."""
    budget, budget_s = ctx.args.budget, parse_budget(ctx.args.budget)
    exp, yaml_path, json_path = plan_paths(ctx.root, ctx.comp, budget)
    if reused_plan(ctx, yaml_path, json_path):
        return exp, yaml_path
    from ..engine.runtime import resolve_device, usable_cores  # torch: only when planning
    from .speed import measure_ladder, sample_images

    t0 = time.time()
    images, decode_s = sample_images(ctx)
    native = int(np.median([max(img.shape[:2]) for img in images]))
    gpu = resolve_device(ctx.cfg.runtime.device).type == "cuda"
    facts = Facts(n_train=len(ctx.train.ids), n_test=len(ctx.test.ids), decode_s=decode_s)
    speeds = measure_ladder(ctx, images, candidates(ctx, native, gpu), facts, budget_s, policy)
    facts = dataclasses.replace(facts, planning_s=round(time.time() - t0, 1))
    plan = make_plan(budget_s, facts, speeds, list(ctx.cfg.predict.tta), policy)
    data = dict(plan.to_dict(), comp=ctx.comp, budget=budget, base_experiment=ctx.exp, native_size=native,
                planned_at=time.strftime("%Y-%m-%d %H:%M:%S"),
                machine=dict(device="cuda" if gpu else "cpu", cores=usable_cores(), cpu=platform.processor()))
    for row in data["considered"]:
        speed = speeds[Candidate(row["model"], row["img_size"], row["batch_size"], row["pretrained"])]
        row.update(train_ips=round(1 / speed.train_s, 1), eval_ips=round(1 / speed.eval_s, 1))
    base_layer = read_yaml(experiment_file(ctx.root, ctx.exp)) if ctx.exp != "baseline" else {}
    layer = deep_merge(base_layer, recipe(plan, ctx.cfg, len(ctx.train.ids)))
    header = [f"Planned by `make plan COMP={ctx.comp} BUDGET={budget}` on {data['planned_at']} "
              f"({data['machine']['device']}, {data['machine']['cores']} cores), over EXP={ctx.exp}.",
              "Reused as it is by `make all BUDGET=...`: delete this file to plan again."] + describe(data)
    atomic_write_text(json_path, json.dumps(data, indent=1) + "\n")
    write_experiment(ctx.root, exp, layer, header)
    for line in describe(data):
        log.info(f"plan: {line}")
    log.info(f"plan: wrote {yaml_path} (EXP={exp})")
    return exp, yaml_path
