"""Budgeted runs: the planner's arithmetic on fake speed tables (a plan always fits its budget), the priors that
order the candidates and pick the race's field, the linear schedule, the watchdog, and `make plan` / `make all
BUDGET=` end to end on tiny data (the race's winner's fold 0 goes on in the run; a rerun reuses the plan)."""
import json

import numpy as np
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import TINY, make_competition, run_make, run_script
from foldstack.budget.planner import (Candidate, Facts, Policy, Speed, affordable_epochs, estimate, fallback_plan,
                                      feasible_plans, parse_budget, plan_candidate, views)
from foldstack.budget.policy import by_priors, ladder, race_entrants
from foldstack.config.training import Train
from foldstack.errors import PipelineError
from foldstack.optim.schedule import create_schedule


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("10m", 600), ("2h", 7200), ("1h30m", 5400), ("2.5m", 150)])
def test_budget_durations(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["10", "ten minutes", "10x", "0m", "", "m10"])
def test_bad_budgets_are_refused(text):
    with pytest.raises(PipelineError, match="BUDGET"):
        parse_budget(text)


LADDER = [Candidate("resnet10t", 32, 128), Candidate("resnet18", 32, 128), Candidate("resnet10t", 64, 128),
          Candidate("resnet18", 64, 128)]
FACTS = Facts(n_train=14_000, n_test=3_500, decode_s=1e-4)


def table(train_ips, eval_ips):
    return {c: Speed(1 / t, 1 / e) for c, t, e in zip(LADDER, train_ips, eval_ips)}


@settings(max_examples=200, deadline=None, derandomize=True)
@given(budget=st.floats(10, 20_000), n_train=st.integers(50, 200_000), n_test=st.integers(1, 50_000),
       planning=st.floats(0, 60), trained=st.floats(0, 3),
       train_ips=st.lists(st.floats(5, 5_000), min_size=1, max_size=4),
       eval_ips=st.lists(st.floats(20, 20_000), min_size=4, max_size=4), tta=st.sampled_from([[], ["hflip"], ["d4"]]))
def test_every_plan_fits_its_budget(budget, n_train, n_test, planning, trained, train_ips, eval_ips, tta):
    facts = Facts(n_train, n_test, decode_s=2e-4, planning_s=planning, trained_s=trained)
    speeds = table(train_ips, eval_ips)
    policy = Policy()
    plans = feasible_plans(budget, facts, speeds, tta, policy)
    try:
        plans = plans or [fallback_plan(budget, facts, speeds, policy)]
    except PipelineError as e:  # refused only when not even one epoch of the cheapest candidate fits
        c = next(iter(speeds))
        assert affordable_epochs(c, speeds[c], facts, 3, [], policy.fill * budget) == 0, str(e)
        assert "too small" in str(e)
        return
    for plan in plans:
        recomputed = estimate(plan.candidate, speeds[plan.candidate], facts, plan.epochs, plan.folds, plan.tta)
        assert sum(recomputed.values()) <= policy.fill * budget + 1e-6
        assert plan.total_s == pytest.approx(sum(recomputed.values()), abs=0.5)
        assert 1 <= plan.epochs <= policy.max_epochs and plan.folds == policy.folds
        assert plan.tta in (tta, [])
    # one epoch more would not fit, unless the plan is at its maximum
    for plan in plans:
        more = estimate(plan.candidate, speeds[plan.candidate], facts, plan.epochs + 1, plan.folds, plan.tta)
        assert plan.epochs == policy.max_epochs or sum(more.values()) > policy.fill * budget - 1e-6


def test_a_candidate_fits_when_it_reaches_its_minimum_epochs():
    speeds = table([800, 500, 200, 150], [3000, 2500, 700, 550])
    plans = feasible_plans(600, FACTS, speeds, ["d4"])
    by_epochs = {c: e for c, e in plans[0].considered}
    minimum = Policy().epoch_range(False, FACTS.n_train * 2 / 3)[0]
    assert minimum == 8  # 9,333 rows a fold: min_epochs decides
    assert [p.candidate for p in plans] == [c for c in LADDER if by_epochs[c] >= minimum]
    assert 0 < len(plans) < len(LADDER)  # the budget separates them
    # a fold already trained in the race is not paid twice: more epochs fit
    reused = feasible_plans(600, Facts(**{**FACTS.__dict__, "trained_s": 60.0}), speeds, ["d4"])
    assert all(r.epochs >= p.epochs for r, p in zip(reused, plans)) and sum(r.epochs for r in reused) > sum(
        p.epochs for p in plans)
    huge = feasible_plans(10**7, FACTS, speeds, [])
    assert len(huge) == len(LADDER) and all(p.epochs == Policy().max_epochs for p in huge)


def test_the_priors_put_pretrained_first_then_resolution_before_depth():
    cands = [Candidate("resnet10t", 32, 64), Candidate("resnet34", 48, 64), Candidate("resnet18", 64, 64),
             Candidate("resnet10t", 64, 64), Candidate("resnet10t", 96, 64), Candidate("resnet18", 32, 64, True)]
    plans = [plan_candidate(c, Speed(1e-5, 1e-5), FACTS, [], 10**5) for c in cands]
    order = [(p.candidate.model, p.candidate.img_size) for p in by_priors(plans)]
    assert order == [("resnet18", 32), ("resnet10t", 96), ("resnet18", 64), ("resnet10t", 64), ("resnet34", 48),
                     ("resnet10t", 32)]
    # the race's field, in the priors' order: first those new in both model and size (resnet34 48 px before
    # resnet18 64 px, whose model is in already), then the best of the rest
    assert [(p.candidate.model, p.candidate.img_size) for p in race_entrants(by_priors(plans), 3)] == [
        ("resnet18", 32), ("resnet10t", 96), ("resnet34", 48)]
    assert [(p.candidate.model, p.candidate.img_size) for p in race_entrants(by_priors(plans), 4)] == [
        ("resnet18", 32), ("resnet10t", 96), ("resnet18", 64), ("resnet34", 48)]


def test_families_that_train_badly_from_scratch_on_small_data_leave_the_default_ladder():
    small = {c.model for c in ladder(128, False, 3_453)}
    assert small == {"resnet10t", "resnet18", "resnet34"}
    assert "efficientnet_b0" in {c.model for c in ladder(128, False, 200_000)}
    assert "efficientnet_b0" in {c.model for c in ladder(128, False, 3_453, models=["efficientnet_b0"])}  # named
    assert "efficientnet_b0" in {c.model for c in ladder(128, False, 3_453, pretrained={"efficientnet_b0"})}


def test_small_data_sets_need_more_epochs_from_scratch_not_pretrained():
    policy = Policy()
    assert policy.epoch_range(False, 2_302)[0] == 9  # flowers, 3 folds: 20,000 images seen
    assert policy.epoch_range(False, 100)[0] == policy.max_epochs  # capped
    assert policy.epoch_range(True, 2_302) == (policy.min_epochs_pretrained, policy.max_epochs_pretrained)


def test_tta_is_dropped_before_the_model():
    # TTA that would push the only candidate under its minimum epochs is dropped, not the epochs
    one = {LADDER[0]: Speed(1 / 800, 1 / 400)}
    with_tta = affordable_epochs(LADDER[0], one[LADDER[0]], FACTS, 3, ["d4"], 0.85 * 900)
    [plan] = feasible_plans(900, FACTS, one, ["d4"])
    assert with_tta < Policy().min_epochs <= plan.epochs and plan.tta == []
    assert views(["d4"]) == 8 and views(["hflip", "vflip"]) == 4


def test_linear_schedule_reaches_min_lr_at_the_last_update():
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD([{"params": model.parameters(), "lr_scale": 1.0}], lr=1.0)
    schedule = create_schedule(optimizer, Train(scheduler="linear", epochs=4, warmup_epochs=0, lr=1.0, min_lr=0.0), 10)
    lrs = []
    for step in range(1, 41):
        lrs.append(optimizer.param_groups[0]["lr"])
        schedule.step_update(step)
    assert lrs[0] == 1.0 and optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(np.diff(lrs), -1 / 40)  # a straight line


def test_the_watchdog_stops_a_fold_that_overruns_and_says_so(tmp_path):
    make_competition(tmp_path, "comp")
    run_script(tmp_path, "01_folds.py", "comp", *TINY)
    proc = run_script(tmp_path, "02_train.py", "comp", *TINY, "train.epochs=4", "train.time_limit=0.001",
                      extra=["--fold", "0"])
    assert "watchdog: train.time_limit=0s reached in epoch 1 of 4" in proc.stderr
    manifest = json.loads(next(tmp_path.glob("models/comp/baseline/*/fold0/manifest.json")).read_text())
    dog = manifest["metrics"]["watchdog"]
    assert dog["epochs_run"] == 1 and dog["epochs_planned"] == 4 and manifest["metrics"]["epochs"] == 1
    log = (next(tmp_path.glob("models/comp/baseline/*/fold0")) / "log.csv").read_text().splitlines()
    assert len(log) == 2  # header + the one epoch it validated


def _tree(root):
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_make_all_with_a_budget_plans_once_runs_and_a_rerun_is_a_no_op(project):
    make_competition(project, "comp", n_train=36, n_test=9)
    args = dict(COMP="comp", BUDGET="60s", PLAN_MODELS="test_resnet", PLAN_SIZES="24,32",
                LABELS="input/comp/test_labels.csv", OVERRIDES="runtime.progress=false")
    first = run_make(project, "all", **args)
    plan_yaml = project / "configs" / "exp" / "comp-budget-60s.yaml"
    data = json.loads(plan_yaml.with_suffix(".plan.json").read_text())
    layer = yaml.safe_load(plan_yaml.read_text())
    assert layer["model"]["name"] == "test_resnet" and layer["data"]["img_size"] == data["candidate"]["img_size"]
    assert layer["train"]["scheduler"] == "linear" and layer["train"]["min_lr"] == 0.0
    assert layer["train"]["epochs"] == data["epochs"] and layer["folds"]["n_splits"] == data["folds"]
    # the watchdog: 1.25 x the fold seconds the winner was planned with (the run's is redone at the race's speed)
    race = json.loads(plan_yaml.with_suffix(".race.json").read_text())
    [won] = [e for e in race["entrants"] if e["out_at"] is None]
    assert layer["train"]["time_limit"] == pytest.approx(1.25 * won["plan"]["fold_s"], abs=0.1)
    # the estimate fits policy.fill of the budget, or keep_fill where the race's winner keeps its schedule
    assert data["total_s"] <= Policy().keep_fill * 60 + 1e-9
    for stage in ("plan", "folds", "train", "oof", "stack", "submit", "total"):
        assert f"budget: {stage} " in first.stderr
    assert "budget: submission.csv accuracy = " in first.stderr
    folds = list(project.glob("models/comp/comp-budget-60s/*/fold*/manifest.json"))
    assert len(folds) == data["folds"]
    trained = json.loads(folds[0].read_text())["config"]
    assert trained["train"]["epochs"] == data["epochs"] and trained["model"]["name"] == "test_resnet"

    before = _tree(project)
    second = run_make(project, "all", **args)
    assert "plan: reusing" in second.stderr and "px: " not in second.stderr  # nothing measured again
    after = _tree(project)
    changed = {k for k in before if after.get(k) != before[k]} | (after.keys() - before.keys())
    assert changed <= {"submission.csv"}, changed  # the copy of the same submission, nothing else


def test_a_budget_too_small_is_one_line_and_writes_nothing(project):
    make_competition(project, "comp")
    proc = run_make(project, "plan", check=False, COMP="comp", BUDGET="1s", PLAN_MODELS="test_resnet",
                    PLAN_SIZES="32")
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "too small" in errors[0]
    assert not list((project / "configs" / "exp").glob("comp-budget-*"))
    proc = run_make(project, "plan", check=False, COMP="comp", BUDGET="soon")
    assert proc.returncode != 0 and "error: BUDGET='soon'" in proc.stderr
