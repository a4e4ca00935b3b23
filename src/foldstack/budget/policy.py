"""Planning policy: the ladder of candidates `make plan` measures (cheapest first), the priors that order the ones
that fit (which of them race), where a plan is written and the recipe it trains (the experiment layer it writes);
the arithmetic is planner.py's, the speeds speed.py's, the race race.py's."""
import dataclasses
from pathlib import Path

import numpy as np

from ..config.files import experiment_file
from ..errors import PipelineError
from ..utils.tables import format_table
from .planner import (Candidate, Facts, Policy, budget_name, feasible_plans, first_rung_seconds,
                      winner_share)

# Relative cost per pixel of each ladder model (2-core CPU training, measured: docs/measured.md), to order the
# ladder cheapest first; the plan uses measured speeds, this only decides what is measured first.
MODEL_COST = {"resnet10t": 1.0, "resnet18": 1.4, "resnet34": 2.8, "efficientnet_b0": 6.3}
SIZES = (32, 48, 64, 96, 128, 160, 192, 224)
# Families that train badly from scratch on a few thousand images (depthwise convolutions, squeeze-excitation): on a
# 12-class plant set efficientnet_b0 at 32 px scored 0.74 where resnet18 at 64 px scored 0.87 (docs/budget.md,
# Priors). From scratch under SMALL_DATA train rows they race only when PLAN_MODELS names them.
SCRATCH_POOR = ("efficientnet", "tf_efficientnet", "mobilenet", "mnasnet", "ghostnet", "fbnet")
SMALL_DATA = 50_000


def prior_key(c: Candidate) -> tuple:
    """Best first: pretrained before from scratch; then resolution before depth (the larger image, then the larger
    model). Measured on our data sets: docs/budget.md, Priors."""
    return (not c.pretrained, -c.img_size, -MODEL_COST.get(c.model, 1.0))


def trains_badly_from_scratch(model: str, n_train: int) -> bool:
    """A family known to train badly from scratch on this little data: left out of the default ladder."""
    return n_train < SMALL_DATA and model.startswith(SCRATCH_POOR)


def by_priors(plans: list) -> list:
    """The plans that fit, best first by the priors."""
    return sorted(plans, key=lambda p: prior_key(p.candidate))


def race_field(budget_s: float, facts: Facts, speeds: dict, tta: list, policy: Policy) -> list:
    """The race's field, best first by the priors: the largest, of at most
    policy.race_size, whose rung 1 gives each candidate policy.race_epochs epochs; each planned with the race's
    seconds reserved less the winner's share (its fold 0 goes on in the run). One plan (no race) when no two
    candidates can race; none when no candidate fits."""
    for k in range(policy.race_size, 0, -1):
        reserve = policy.race_share * budget_s if k > 1 else 0.0
        f = dataclasses.replace(facts, planning_s=facts.planning_s + reserve, trained_s=reserve * winner_share(k))
        t0 = first_rung_seconds(k, reserve) if k > 1 else 0.0
        ordered = [p for p in by_priors(feasible_plans(budget_s, f, speeds, tta, policy))
                   if k == 1 or policy.race_epochs * p.fold_s / p.epochs <= t0]
        field = race_entrants(ordered, k)
        if len(field) == k:
            return field
    return []


def race_entrants(plans: list, k: int) -> list:
    """Up to k of the plans (best first), spread over models and sizes: first those whose model and size are both
    new to the field, then the rest in order."""
    chosen, models, sizes = [], set(), set()
    for p in plans:
        if len(chosen) < k and p.candidate.model not in models and p.candidate.img_size not in sizes:
            chosen.append(p)
            models.add(p.candidate.model)
            sizes.add(p.candidate.img_size)
    chosen += [p for p in plans if p not in chosen][:k - len(chosen)]
    return sorted(chosen, key=plans.index)


def plan_paths(root: Path, comp: str, budget: str) -> tuple[str, Path, Path]:
    """(experiment name, its YAML, the numbers beside it)."""
    exp = f"{comp}-budget-{budget_name(budget)}"
    path = experiment_file(root, exp)
    return exp, path, path.with_suffix(".plan.json")


def ladder(native: int, gpu: bool, n_train: int, models=None, sizes=None, pretrained=frozenset()) -> list[Candidate]:
    """Model x image size, cheapest first: sizes from the images' side (or 32) up to twice it (at least 64, 224 at
    most); batch 128 (64 under 5,000 train rows), 256 on a GPU. `models` / `sizes` replace the defaults (PLAN_MODELS,
    PLAN_SIZES); the models in `pretrained` (weights in weights/) are fine-tuned."""
    import timm

    # the default ladder leaves out the families that train badly from scratch here; PLAN_MODELS may race them
    models = list(models or [m for m in MODEL_COST if m in pretrained or not trains_badly_from_scratch(m, n_train)])
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
    rows = [[row["model"], f"{row['img_size']}px", f"{row['train_ips']:.0f}", f"{row['eval_ips']:.0f}",
             str(row["epochs"]), "<- chosen" if (row["model"], row["img_size"]) == (c["model"], c["img_size"]) else ""]
            for row in plan_data["considered"]]
    table = format_table(["model", "size", "train/s", "eval/s", "epochs", ""], rows)
    lines += ["  " + line.rstrip() for line in table.splitlines()]
    race = plan_data.get("race") or {}
    if race.get("table"):
        lines.append(f"race on fold 0 ({race['seconds']:.0f}s, {race['share']:.0%} of the budget; the winner's fold 0 "
                     f"goes on in the run):")
        lines += ["  " + line.rstrip() for line in race["table"]]
    return lines
