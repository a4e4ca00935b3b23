"""The planner's race on tiny data: a candidate that learns nothing never wins however the priors order it, the race
keeps to its share of the budget, a rerun of a finished race trains nothing, and `make all BUDGET=...` continues
the winner's fold 0 from the race (the same epochs, the same numbers) and reuses the plan."""
import json
import time

import pandas as pd
import pytest
import yaml

from conftest import make_competition, make_project, run_here, run_make
from foldstack import pipeline
from foldstack.budget.experiment import plan_experiment
from foldstack.budget.planner import Candidate, Facts, Policy, Speed, first_rung_seconds, rung_counts, winner_share
from foldstack.budget.policy import by_priors, race_field
from foldstack.budget.race import Entrant, Race, run_race

RUNTIME = ["runtime.num_workers=0", "runtime.progress=false"]


def layer(lr: float, size: int) -> dict:
    return dict(model=dict(name="test_resnet"), data=dict(img_size=size, batch_size=8), folds=dict(n_splits=3),
                train=dict(epochs=200, lr=lr, warmup_epochs=0, warmup_lr=0.0, scheduler="linear", min_lr=0.0,
                           optimizer="adamw"))


def models_tree(root):
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in (root / "models").rglob("*") if p.is_file()}


@pytest.mark.parametrize("k,counts", [(2, [2]), (3, [3, 2]), (4, [4, 2]), (5, [5, 3, 2]), (8, [8, 4, 2])])
def test_each_rung_halves_the_field_and_the_winner_trains_the_longest(k, counts):
    assert rung_counts(k) == counts
    # the winner's seconds (t0 x 2^(rungs-1)) over the race's: every candidate's t0 at rung 1, doubled at each rung
    units = sum(n * (2 ** (r - 1) if r else 1) for r, n in enumerate(counts))
    assert winner_share(k) == pytest.approx(2 ** (len(counts) - 1) / units)
    assert 1 / k <= winner_share(k) <= 0.5


def test_the_field_is_the_largest_whose_first_rung_gives_each_its_race_epochs():
    facts, policy = Facts(n_train=3_453, n_test=864, planning_s=40.0), Policy()
    # flowers-like speeds (train / eval images per second): an epoch of 2,302 + 1,151 rows costs 10s to 45s
    ips = {("resnet10t", 64): (230, 900), ("resnet18", 64): (150, 600), ("resnet34", 48): (120, 600),
           ("resnet10t", 96): (110, 250), ("resnet18", 96): (55, 190)}
    speeds = {Candidate(m, s, 64): Speed(1 / t, 1 / e) for (m, s), (t, e) in ips.items()}
    for budget_s in (600, 1200, 3600, 14_400):
        field = race_field(budget_s, facts, speeds, [], policy)
        k = len(field)
        assert 1 <= k <= policy.race_size and field == by_priors(field)  # in the priors' order
        if k > 1:  # each gets its race epochs in rung 1, by the plan's estimate of an epoch
            t0 = first_rung_seconds(k, policy.race_share * budget_s)
            assert all(policy.race_epochs * p.fold_s / p.epochs <= t0 for p in field)
            # and a field one larger would not have had that
            if k < policy.race_size:
                bigger = race_field(budget_s, facts, speeds, [], Policy(race_size=k + 1, race_epochs=0))
                t1 = first_rung_seconds(k + 1, policy.race_share * budget_s)
                assert len(bigger) < k + 1 or any(policy.race_epochs * p.fold_s / p.epochs > t1 for p in bigger)
    assert len(race_field(14_400, facts, speeds, [], policy)) == 4  # four hours: the whole field races
    assert len(race_field(600, facts, speeds, [], policy)) < 4


def test_a_candidate_that_learns_nothing_never_wins_and_the_race_keeps_to_its_share(tmp_path):
    root = make_project(tmp_path / "project")
    make_competition(root, "c", n_train=48, n_test=6)
    # listed first, so the priors' order (and any tie) favours the one whose LR is ~0: only its scores can lose it
    frozen, learner = layer(1e-9, 24), layer(3e-3, 24)
    frozen["train"]["weight_decay"] = 0.0
    # more epochs than the race has time for: the race's clock pauses them (an epoch is taken to cost 0.3s)
    entrants = [Entrant("frozen", dict(epochs=200, fold_s=60.0), frozen),
                Entrant("learner", dict(epochs=200, fold_s=60.0), learner)]
    race_s = 16.0
    race = Race("c", "c-budget-test", "accuracy", race_s, entrants, root / "race.json")
    t0 = time.time()
    winner = run_race(race, root, RUNTIME)
    wall = time.time() - t0
    assert winner.label == "learner" and entrants[0].out_at == 0
    [frozen_result], [learner_result] = entrants[0].rungs, entrants[1].rungs
    assert learner_result["metric"] > frozen_result["metric"], (learner_result, frozen_result)
    # its share: whole epochs, so at most about one epoch over; and it used most of it (not one epoch each)
    assert race.spent_s <= race_s + 2 * max(frozen_result["epoch_s"], learner_result["epoch_s"]) + 1.0, race.spent_s
    assert wall <= race.spent_s + 1.0 and race.spent_s >= 0.6 * race_s
    # the loser's fold 0 is gone, the winner's stays resumable
    partials = list(root.glob("models/c/c-budget-test/*/.fold0.partial"))
    assert len(partials) == 1 and (partials[0] / "last.pt").is_file()
    log = pd.read_csv(partials[0] / "log.csv")
    assert len(log) == learner_result["epoch"] and log["accuracy"].iloc[-1] == pytest.approx(learner_result["metric"])
    # the state on disk is the race: reloaded and rerun, it trains nothing and names the same winner
    before = models_tree(root)
    again = Race.load(root / "race.json")
    assert run_race(again, root, RUNTIME).label == "learner" and models_tree(root) == before


def test_make_all_continues_the_race_winners_fold_0_and_a_rerun_is_a_no_op(tmp_path):
    root = make_project(tmp_path / "project")
    make_competition(root, "c", n_train=48, n_test=6)
    # tiny data: no minimum of images seen, few epochs; a race too short for more than its one epoch a candidate
    policy = Policy(min_epochs=3, min_images_seen=0, max_epochs=6, race_share=0.001, race_epochs=0)
    ctx = pipeline.context("c", "baseline", overrides=RUNTIME, root=root, budget="90s", models="test_resnet",
                           sizes="16,24")
    exp, yaml_path = plan_experiment(ctx, policy)
    data = json.loads(yaml_path.with_suffix(".plan.json").read_text())
    race = data["race"]
    assert [e["label"] for e in race["entrants"]] == ["test_resnet 24px", "test_resnet 16px"]  # resolution first
    assert len(race["table"]) == 4  # header, rule, one row a candidate
    [won] = [e for e in race["entrants"] if e["out_at"] is None]
    assert [line.split("  ")[0] for line in race["table"] if line.endswith(" won")] == [won["label"]]
    layer_ = yaml.safe_load(yaml_path.read_text())
    assert f"test_resnet {layer_['data']['img_size']}px" == won["label"]
    # a plan lost after its race (killed before writing it): planning again resumes the finished race from its
    # .race.json, measures and trains nothing, and writes the same experiment
    text, before = yaml_path.read_text(), models_tree(root)
    yaml_path.unlink()
    yaml_path.with_suffix(".plan.json").unlink()
    assert plan_experiment(ctx, policy) == (exp, yaml_path)
    assert yaml_path.read_text().split("\n", 2)[2] == text.split("\n", 2)[2] and models_tree(root) == before
    # the plan counts the winner's fold-0 seconds once: the train estimate is the run less what the race trained
    raced_epochs, raced_s = won["rungs"][-1]["epoch"], won["rungs"][-1]["seconds"]
    assert data["estimate"]["plan"] >= race["seconds"] and raced_epochs == 1 and data["epochs"] >= 3

    run_make(root, "all", COMP="c", BUDGET="90s", OVERRIDES=" ".join(RUNTIME))
    [fold0] = root.glob(f"models/c/{exp}/*/fold0")
    log = pd.read_csv(fold0 / "log.csv")
    manifest = json.loads((fold0 / "manifest.json").read_text())
    assert manifest["metrics"]["budget"]["resumed_after"] == raced_epochs and len(log) > raced_epochs
    assert log["seconds"].iloc[:raced_epochs].sum() == pytest.approx(raced_s, abs=0.2)  # the race's epochs, kept
    assert log["accuracy"].iloc[raced_epochs - 1] == pytest.approx(won["rungs"][-1]["metric"])
    assert not list(root.glob("models/c/*/*/.fold*.partial"))  # the losers' folds were removed

    before = models_tree(root)
    second = run_make(root, "all", COMP="c", BUDGET="90s", OVERRIDES=" ".join(RUNTIME))
    assert "plan: reusing" in second.stderr and "race:" not in second.stderr and models_tree(root) == before

    # make report shows the race on the plan's experiment page, its numbers those of the plan
    run_here(root, "report.py", "c", *RUNTIME, extra=("--exp", exp))
    table = pd.read_csv(root / "reports" / "c" / exp / "race.csv")
    assert table["candidate"].tolist() == [e["label"] for e in race["entrants"]]
    assert table.loc[table["outcome"] == "won", "candidate"].tolist() == [won["label"]]
    assert table["rung 1 accuracy"].tolist() == pytest.approx([e["rungs"][0]["metric"] for e in race["entrants"]])
    assert "Budget plan and race" in (root / "reports" / "c" / exp / "index.html").read_text()
