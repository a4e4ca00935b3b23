"""`make plan COMP=<name> BUDGET=10m`: measure this machine on a short ladder of candidates and write the run
that fits the budget as an experiment, configs/exp/<comp>-budget-<B>.yaml (with its numbers beside it in
<comp>-budget-<B>.plan.json). An existing plan is reused, never redone: delete the file to plan again."""
import dataclasses
import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
import yaml

from ..budget.planner import Candidate, Facts, Policy, affordable_epochs, budget_name, make_plan, parse_budget
from ..config import read_yaml
from ..config.loading import deep_merge
from ..errors import PipelineError
from ..utils.io import atomic_write_text

log = logging.getLogger("foldstack")

# Relative cost per pixel of each ladder model (2-core CPU training, measured: docs/measured.md), to order the
# ladder cheapest first; the plan uses measured speeds, this only decides what is measured first.
MODEL_COST = {"resnet10t": 1.0, "resnet18": 1.4, "resnet34": 2.8, "efficientnet_b0": 6.3}
SIZES = (32, 48, 64, 96, 128, 160, 192, 224)


def plan_paths(root: Path, comp: str, budget: str) -> tuple[str, Path, Path]:
    """(experiment name, its YAML, the numbers beside it)."""
    exp = f"{comp}-budget-{budget_name(budget)}"
    folder = Path(root) / "configs" / "exp"
    return exp, folder / f"{exp}.yaml", folder / f"{exp}.plan.json"


def ladder(native: int, gpu: bool, n_train: int, models=None, sizes=None, pretrained=frozenset()) -> list[Candidate]:
    """Model x image size, cheapest first: sizes from the images' own side (or 32) up to twice it (at least 64),
    224 at most; batch 128 (64 under 5,000 train rows: enough updates per epoch), 256 on a GPU. `models` / `sizes`
    replace the defaults (PLAN_MODELS, PLAN_SIZES); the models in `pretrained` (their weights are in weights/)
    are fine-tuned from them."""
    import timm

    models = list(models or MODEL_COST)
    unknown = [m for m in models if not timm.is_model(m)]
    if unknown:
        raise PipelineError(f"PLAN_MODELS: unknown timm model {unknown[0]!r}")
    sizes = list(sizes or [s for s in SIZES if min(native, 32) <= s <= max(64, 2 * native)])
    batch = 256 if gpu else (64 if n_train < 5000 else 128)
    out = [Candidate(m, s, batch, m in pretrained) for m in models for s in sizes]
    return sorted(out, key=lambda c: MODEL_COST.get(c.model, 1.0) * c.img_size ** 2)


def recipe(plan, base_cfg, n_train: int) -> dict:
    """The experiment layer of a plan: the candidate, epochs, folds and TTA, with the schedule a budget wants (linear
    decay to zero at the last planned update; an EMA of the weights over the last ~10% of the updates) and the
    watchdog at policy.watchdog_slack x the fold's planned seconds."""
    c = plan.candidate
    updates = plan.epochs * -(-int(n_train * (plan.folds - 1) / plan.folds) // c.batch_size)
    layer = dict(
        model=dict(name=c.model, pretrained=c.pretrained),
        data=dict(img_size=c.img_size, batch_size=c.batch_size),
        folds=dict(n_splits=plan.folds),
        train=dict(epochs=plan.epochs, scheduler="linear", min_lr=0.0, warmup_epochs=1,
                   lr=5e-4 if c.pretrained else 2e-3, ema=True,
                   ema_decay=float(np.clip(1 - 10 / max(updates, 1), 0.9, 0.9999).round(4)),
                   time_limit=round(plan.fold_s * Policy.watchdog_slack, 1)),
        predict=dict(tta=list(plan.tta)),
    )
    if base_cfg.competition.task == "multiclass":
        layer["loss"] = dict(label_smoothing=0.1)
    return layer


def describe(plan_data: dict) -> list[str]:
    """The plan as lines (the YAML's header and what `make plan` prints)."""
    c, est = plan_data["candidate"], plan_data["estimate"]
    lines = [f"{c['model']} at {c['img_size']}px{' (pretrained)' if c['pretrained'] else ''}, batch "
             f"{c['batch_size']}, {plan_data['epochs']} epochs x {plan_data['folds']} folds, TTA "
             f"{plan_data['tta'] or 'none'}",
             f"estimated {plan_data['total_s']:.0f}s of the {plan_data['budget_s']:.0f}s budget: "
             + ", ".join(f"{k} {v:.0f}s" for k, v in est.items()),
             "candidates (train / eval images per second, epochs that would fit):"]
    for row in plan_data["considered"]:
        chosen = (row["model"], row["img_size"]) == (c["model"], c["img_size"])
        lines.append(f"  {row['model']:<16} {row['img_size']:>4}px  {row['train_ips']:>8.0f} / "
                     f"{row['eval_ips']:<8.0f} {row['epochs']:>3} epochs" + ("  <- chosen" if chosen else ""))
    return lines


def measure_ladder(ctx, images: list, candidates: list, facts: Facts, budget_s: float, policy: Policy) -> dict:
    """{Candidate: Speed} for the candidates up to the first that cannot get its minimum epochs."""
    from ..budget.speed import measure

    speeds = {}
    for c in candidates:
        t0 = time.perf_counter()
        speed = measure(ctx.cfg, c, images, ctx.targets, ctx.cfg.competition.task)
        speeds[c] = speed
        e = affordable_epochs(c, speed, facts, min(policy.folds), [], policy.fill * budget_s)
        log.info(f"plan: {c.model} at {c.img_size}px: {1 / speed.train_s:.0f} train / {1 / speed.eval_s:.0f} eval "
                 f"images/s, {e} epochs would fit ({time.perf_counter() - t0:.1f}s to measure)")
        if e < policy.epoch_range(c.pretrained, facts.n_train * (min(policy.folds) - 1) / min(policy.folds))[0]:
            break  # every later candidate costs more
    return speeds


def add_arguments(p) -> None:
    p.add_argument("--budget", required=True, help="time for the whole run: 90s, 10m, 2h, 1h30m")
    p.add_argument("--models", default="", help="comma-separated timm models for the ladder (default: "
                   + ", ".join(MODEL_COST) + ")")
    p.add_argument("--sizes", default="", help="comma-separated image sizes for the ladder (default: from the "
                   "images' own size)")


def run(ctx, policy: Policy = Policy()) -> tuple[str, Path]:
    """Plan (or reuse the plan); returns (experiment name, its YAML)."""
    budget = ctx.args.budget
    budget_s = parse_budget(budget)
    exp, yaml_path, json_path = plan_paths(ctx.root, ctx.comp, budget)
    if yaml_path.is_file() and json_path.is_file():
        data = json.loads(json_path.read_text())
        if data.get("comp") != ctx.comp:
            raise PipelineError(f"{json_path}: planned for {data.get('comp')!r}, not {ctx.comp!r}: delete it")
        log.info(f"plan: reusing {yaml_path} (delete it to plan again)")
        for line in describe(data):
            log.info(f"plan: {line}")
        return exp, yaml_path
    import torch

    t0 = time.time()
    from ..budget.speed import sample_images

    images, decode_s = sample_images(ctx)
    native = int(np.median([max(img.shape[:2]) for img in images]))
    gpu = ctx.cfg.runtime.device.startswith("cuda") or (ctx.cfg.runtime.device == "auto" and torch.cuda.is_available())
    facts = Facts(n_train=len(ctx.train.ids), n_test=len(ctx.test.ids), decode_s=decode_s)
    tta = list(ctx.cfg.predict.tta)
    models = [m for m in ctx.args.models.split(",") if m]
    try:
        sizes = [int(v) for v in ctx.args.sizes.split(",") if v]
    except ValueError:
        raise PipelineError(f"PLAN_SIZES={ctx.args.sizes!r}: expected comma-separated integers") from None
    from ..models.hub import lookup

    models = models or list(MODEL_COST)
    cached = {m for m in models if ctx.cfg.model.pretrained is not False and lookup(m, ctx.root, False).weights}
    candidates = ladder(native, gpu, facts.n_train, models, sizes, frozenset(cached))
    speeds = measure_ladder(ctx, images, candidates, facts, budget_s, policy)
    facts = dataclasses.replace(facts, planning_s=round(time.time() - t0, 1))
    plan = make_plan(budget_s, facts, speeds, tta, policy)
    data = dict(plan.to_dict(), comp=ctx.comp, budget=budget, base_experiment=ctx.exp, native_size=native,
                planned_at=time.strftime("%Y-%m-%d %H:%M:%S"),
                machine=dict(device="cuda" if gpu else "cpu", cores=os.cpu_count(), cpu=platform.processor()))
    for row in data["considered"]:
        speed = speeds[Candidate(row["model"], row["img_size"], row["batch_size"], row["pretrained"])]
        row.update(train_ips=round(1 / speed.train_s, 1), eval_ips=round(1 / speed.eval_s, 1))
    base_layer = read_yaml(ctx.root / "configs" / "exp" / f"{ctx.exp}.yaml") if ctx.exp != "baseline" else {}
    layer = deep_merge(base_layer, recipe(plan, ctx.cfg, len(ctx.train.ids)))
    header = [f"Planned by `make plan COMP={ctx.comp} BUDGET={budget}` on {data['planned_at']} "
              f"({data['machine']['device']}, {data['machine']['cores']} cores), over EXP={ctx.exp}.",
              "Reused as it is by `make all BUDGET=...`: delete this file to plan again."] + describe(data)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json_path, json.dumps(data, indent=1) + "\n")
    atomic_write_text(yaml_path, "".join(f"# {line}\n" for line in header)
                      + yaml.safe_dump(layer, sort_keys=False))
    for line in describe(data):
        log.info(f"plan: {line}")
    log.info(f"plan: wrote {yaml_path} (EXP={exp})")
    return exp, yaml_path

