"""`make plan`'s work: measure this machine on a short ladder of candidates and write the run that fits the budget
as an experiment, configs/exp/<comp>-budget-<B>.yaml (with its numbers beside it in <comp>-budget-<B>.plan.json).
An existing plan is reused, never redone: delete the file to plan again."""
import dataclasses
import json
import logging
import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..config.files import experiment_file, write_experiment
from ..config.loading import deep_merge, read_yaml
from ..errors import PipelineError
from ..utils.io import atomic_write_text
from .planner import Candidate, Facts, Plan, Policy, Speed, affordable_epochs, fallback_plan, parse_budget, planned
from .policy import MODEL_COST, describe, ladder, plan_paths, race_field, recipe
from .race import Entrant, Race, discard_fold0, entrant_context, race_epoch_seconds, run_race

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
    named = [m for m in ctx.args.models.split(",") if m]
    cached = {m for m in named or MODEL_COST
              if ctx.cfg.model.pretrained is not False and lookup(m, ctx.root, False).weights}
    return ladder(native, gpu, len(ctx.train.ids), named, sizes, frozenset(cached))


def measure(ctx, budget_s: float, policy: Policy, race_path: Path) -> Race:
    """Measure this machine on the ladder and choose the field: the plans that fit (the race's seconds reserved,
    less the winner's share, which its fold 0 keeps), ordered by the priors; one entrant when only one fits."""
    from ..engine.runtime import resolve_device, usable_cores  # torch: only when planning
    from .speed import measure_ladder, sample_images

    t0 = time.time()
    images, decode_s = sample_images(ctx)
    native = int(np.median([max(img.shape[:2]) for img in images]))
    gpu = resolve_device(ctx.cfg.runtime.device).type == "cuda"
    facts = Facts(n_train=len(ctx.train.ids), n_test=len(ctx.test.ids), decode_s=decode_s)
    tta = list(ctx.cfg.predict.tta)

    speeds = measure_ladder(ctx, images, candidates(ctx, native, gpu), dataclasses.replace(
        facts, planning_s=policy.race_share * budget_s), budget_s, policy)  # a model's sizes: while they may race
    spent = round(time.time() - t0, 1)
    facts = dataclasses.replace(facts, planning_s=spent)
    plans = race_field(budget_s, facts, speeds, tta, policy) or [fallback_plan(budget_s, facts, speeds, policy)]
    base_layer = read_yaml(experiment_file(ctx.root, ctx.exp)) if ctx.exp != "baseline" else {}
    exp = plan_paths(ctx.root, ctx.comp, ctx.args.budget)[0]
    considered = [dict(asdict(c), epochs=e, train_ips=round(1 / speeds[c].train_s, 1),
                       eval_ips=round(1 / speeds[c].eval_s, 1)) for c, e in plans[0].considered]
    setup = dict(facts=asdict(facts), native_size=native,
                 machine=dict(device="cuda" if gpu else "cpu", cores=usable_cores(), cpu=platform.processor()),
                 considered=considered, base_experiment=ctx.exp)
    entrants = [Entrant(f"{p.candidate.model} {p.candidate.img_size}px", dict(p.to_dict(),
                        speed=asdict(speeds[p.candidate])), deep_merge(base_layer, recipe(p, ctx.cfg, facts.n_train)))
                for p in plans]
    race = Race(ctx.comp, exp, ctx.cfg.competition.metric, policy.race_share * budget_s if len(plans) > 1 else 0.0,
                entrants, race_path, setup=setup)
    race.save()
    return race


def final_plan(ctx, race: Race, winner: Entrant, budget_s: float, policy: Policy,
               overrides: list) -> tuple[Plan, dict]:
    """(the winner's plan, its experiment layer) with what the race measured: its real epochs' seconds (validation
    included) and the planning and race seconds spent. Its schedule is kept, and its fold 0 goes on in the run, while
    that fits policy.keep_fill of the budget; else it trains the epochs that fit from a new fold 0."""
    p = winner.plan
    c, speed, facts = Candidate(**p["candidate"]), Speed(**p["speed"]), Facts(**race.setup["facts"])
    facts = dataclasses.replace(facts, planning_s=round(facts.planning_s + race.spent_s, 1))
    considered = [(Candidate(**{k: row[k] for k in ("model", "img_size", "batch_size", "pretrained")}), row["epochs"])
                  for row in race.setup["considered"]]
    if not winner.rungs:
        return dataclasses.replace(planned(c, speed, facts, p["epochs"], p["folds"], p["tta"], budget_s),
                                   considered=considered), winner.layer
    n_valid, epoch_s = facts.n_train / p["folds"], race_epoch_seconds(winner)
    train_s = (epoch_s - n_valid * speed.eval_s) / (facts.n_train - n_valid)
    speed = Speed(train_s=max(train_s, speed.train_s / 4), eval_s=speed.eval_s)
    # the winner's image cache was built in the race: its seconds are the race's
    facts = dataclasses.replace(facts, decode_s=0.0, trained_s=winner.rungs[-1]["seconds"])
    kept = planned(c, speed, facts, p["epochs"], p["folds"], p["tta"], budget_s)
    if kept.total_s <= policy.keep_fill * budget_s:
        return dataclasses.replace(kept, considered=considered), winner.layer
    facts = dataclasses.replace(facts, trained_s=0.0)
    epochs = max(affordable_epochs(c, speed, facts, p["folds"], p["tta"], policy.fill * budget_s), 1)
    plan = dataclasses.replace(planned(c, speed, facts, epochs, p["folds"], p["tta"], budget_s), considered=considered)
    log.info(f"plan: {winner.label}: {p['epochs']} epochs would take {kept.total_s:.0f}s at the race's "
             f"{epoch_s:.1f}s an epoch: {epochs} epochs instead, from a new fold 0")
    discard_fold0(entrant_context(race, winner, ctx.root, overrides))
    return plan, deep_merge(winner.layer, recipe(plan, ctx.cfg, facts.n_train))


def plan_experiment(ctx, policy: Policy = Policy()) -> tuple[str, Path]:
    """Plan (or reuse the plan) for ctx.args.budget: measure, race the best candidates on fold 0 (or resume a race
    a kill interrupted), write the winner's run; returns (experiment name, its YAML)."""
    budget, budget_s = ctx.args.budget, parse_budget(ctx.args.budget)
    exp, yaml_path, json_path = plan_paths(ctx.root, ctx.comp, budget)
    if reused_plan(ctx, yaml_path, json_path):
        return exp, yaml_path
    race_path = yaml_path.with_suffix(".race.json")
    if race_path.is_file():
        race = Race.load(race_path)
        if race.comp != ctx.comp:
            raise PipelineError(f"{race_path}: a race for {race.comp!r}, not {ctx.comp!r}: delete it")
        log.info(f"plan: resuming the race in {race_path} ({race.spent_s:.0f}s of {race.race_s:.0f}s spent)")
    else:
        race = measure(ctx, budget_s, policy, race_path)
    overrides = list(getattr(ctx.args, "set", []) or [])
    if len(race.entrants) > 1:
        log.info(f"plan: racing {len(race.entrants)} candidates on fold 0 for {race.race_s:.0f}s: "
                 + ", ".join(e.label for e in race.entrants))
        winner = run_race(race, ctx.root, overrides)
    else:
        winner = race.entrants[0]
    plan, layer = final_plan(ctx, race, winner, budget_s, policy, overrides)
    data = dict(plan.to_dict(), comp=ctx.comp, budget=budget, base_experiment=race.setup["base_experiment"],
                native_size=race.setup["native_size"], planned_at=time.strftime("%Y-%m-%d %H:%M:%S"),
                machine=race.setup["machine"], considered=race.setup["considered"],
                race=dict(share=policy.race_share, seconds=race.spent_s, metric=race.metric,
                          table=race.table() if len(race.entrants) > 1 else [],
                          entrants=[dict(label=e.label, rungs=e.rungs, out_at=e.out_at) for e in race.entrants]))
    header = [f"Planned by `make plan COMP={ctx.comp} BUDGET={budget}` on {data['planned_at']} "
              f"({data['machine']['device']}, {data['machine']['cores']} cores), over EXP={data['base_experiment']}.",
              "Reused as it is by `make all BUDGET=...`: delete this file to plan again."] + describe(data)
    atomic_write_text(json_path, json.dumps(data, indent=1) + "\n")
    write_experiment(ctx.root, exp, layer, header)
    for line in describe(data):
        log.info(f"plan: {line}")
    log.info(f"plan: wrote {yaml_path} (EXP={exp})")
    return exp, yaml_path
