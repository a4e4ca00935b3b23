"""A budget that holds when the machine slows down: the schedule follows time as well as updates, the folds left
get the epochs that fit what is left, and a fold far below the others is not averaged blindly."""
import json
import time

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import make_competition
from foldstack import pipeline
from foldstack.budget.tracking import FoldBudget
from foldstack.config.competition import Competition
from foldstack.config.training import Train
from foldstack.errors import PipelineError
from foldstack.fold_weights import cv_table_note, fold_weights, outlier_folds
from foldstack.metrics import fold_scores
from foldstack.optim.schedule import budget_progress, create_schedule


@pytest.mark.parametrize("updates,total,time_fraction,expected", [
    (10, 40, 0.0, 0.25), (10, 40, 0.6, 0.6), (30, 40, 0.5, 0.75), (40, 40, 0.2, 1.0), (5, 40, 1.7, 1.0)])
def test_progress_is_the_larger_of_the_updates_and_the_time_fractions(updates, total, time_fraction, expected):
    assert budget_progress(updates, total, time_fraction) == pytest.approx(expected)


def linear_schedule():
    optimizer = torch.optim.SGD([{"params": torch.nn.Linear(2, 2).parameters(), "lr_scale": 1.0}], lr=1.0)
    tc = Train(scheduler="linear", epochs=4, warmup_epochs=0, lr=1.0, min_lr=0.0)
    return optimizer, create_schedule(optimizer, tc, 10)  # 40 updates


def test_a_timm_schedule_steps_to_the_update_count_of_its_progress():
    optimizer, schedule = linear_schedule()
    schedule.step_update(5, time_fraction=0.5)  # half the time spent after 5 of 40 updates: the LR of update 20
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)
    schedule.step_update(6, time_fraction=0.1)  # the updates lead: update 6's LR
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1 - 6 / 40)
    schedule.step_update(7, time_fraction=1.0)  # the watchdog's limit: the final LR at once
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_the_folds_left_get_the_epochs_the_slowest_fold_so_far_allows():
    budget = FoldBudget(deadline=1000.0, epochs=10, time_limit=50.0, epoch_s=4.0)
    first = budget.share(folds_left=3, now=880.0)  # 40s each: the plan's 4s an epoch fits its 10 epochs
    assert (first.epochs, first.time_limit, first.basis) == (10, 40.0, "plan")
    budget.record(0, seconds=60.0, epochs_run=6)  # the machine slowed down: 10s an epoch, cut after 6
    budget.record(1, seconds=35.0, epochs_run=5)
    second = budget.share(folds_left=2, now=940.0)  # 30s each at 10s an epoch
    assert (second.epochs, second.epoch_s, second.time_limit, second.basis) == (3, 10.0, 30.0, "fold 0")
    late = budget.share(folds_left=1, now=1010.0)  # past the deadline: one epoch, the watchdog's floor
    assert (late.epochs, late.time_limit) == (1, 1.0)


def hand_made_oof(per_fold_accuracy):
    """4 classes, 20 rows a fold; fold k's predictions right on per_fold_accuracy[k] of its rows."""
    rows, y, p, folds = 20, [], [], []
    for k, acc in enumerate(per_fold_accuracy):
        truth = np.arange(rows) % 4
        guess = np.where(np.arange(rows) < round(acc * rows), truth, (truth + 1) % 4)
        y.append(np.eye(4)[truth]), p.append(np.eye(4)[guess] * 0.7 + 0.075), folds.append(np.full(rows, k))
    return np.vstack(y), np.vstack(p), np.concatenate(folds)


def test_a_fold_far_below_the_others_is_named_weighted_or_refused():
    comp = Competition(metric="accuracy", task="multiclass")
    y, p, folds = hand_made_oof([0.85, 0.9, 0.15])
    scores = fold_scores(comp, y, p, folds)
    assert scores == pytest.approx([0.85, 0.9, 0.15])
    assert outlier_folds(scores, "accuracy", 0.05) == [2] and outlier_folds(scores, "accuracy", 0.8) == []
    assert fold_weights(scores, "accuracy", "keep", 0.05) is None
    assert fold_weights(scores, "accuracy", "weight", 0.05) == pytest.approx([0.85 / 1.9, 0.9 / 1.9, 0.15 / 1.9])
    with pytest.raises(PipelineError, match=r"^fold 2: validation accuracy 0.1500 against 0.8750 for the other"):
        fold_weights(scores, "accuracy", "refuse", 0.05)
    assert fold_weights(scores, "accuracy", "refuse", 0.8) is None  # none that far below: nothing refused
    assert cv_table_note(outlier_folds(scores, "accuracy", 0.05), None) == " [fold 2 far below the others]"
    # a loss: lower is better, a fold far above the others is the outlier, weights by the inverse
    assert outlier_folds([0.2, 0.25, 1.4], "log_loss", 0.1) == [2]
    assert fold_weights([0.2, 0.4], "log_loss", "weight", 0.1) == pytest.approx([2 / 3, 1 / 3])


@pytest.fixture
def slow_step(monkeypatch):
    """Every training step of the folds SLEEP seconds slower than the plan measured (the planner's own timing
    runs the step unpatched): a machine that slowed down after planning."""
    from foldstack.engine import training

    real = training.train_step

    def slowed(*args, **kwargs):
        time.sleep(SLEEP)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_step", slowed)


SLEEP, BUDGET_S, SLACK_S = 0.25, 60, 5


def test_a_budgeted_run_on_a_slowed_machine_holds_its_budget_at_the_final_lr(tmp_path, slow_step):
    from foldstack.stages import budget

    root = tmp_path / "project"
    make_competition(root, "comp", n_train=36, n_test=9)
    ctx = pipeline.context("comp", overrides=["runtime.progress=false"], root=root, budget=f"{BUDGET_S}s",
                           models="test_resnet", sizes="24", labels=None)
    t0 = time.time()
    exp = budget.run(ctx)
    total = time.time() - t0
    assert total <= BUDGET_S + SLACK_S
    plan = json.loads((root / "configs" / "exp" / f"{exp}.plan.json").read_text())
    run_cfg = pipeline.context("comp", exp, root=root).cfg
    assert run_cfg.train.scheduler == "linear" and run_cfg.train.min_lr == 0.0
    manifests = sorted(root.glob(f"models/comp/{exp}/*/fold*/manifest.json"))
    assert len(manifests) == plan["folds"]
    behind = 0
    for path in manifests:
        metrics = json.loads(path.read_text())["metrics"]
        share = metrics["budget"]
        assert share["epochs_planned"] == plan["epochs"] and 1 <= share["epochs"] <= plan["epochs"]
        behind += share["epochs"] < plan["epochs"] or "watchdog" in metrics
        rows = pd.read_csv(path.parent / "log.csv")
        assert len(rows) == metrics["epochs"] <= share["epochs"]
        assert rows["lr"].iloc[-1] == pytest.approx(run_cfg.train.min_lr, abs=1e-12)  # the schedule's end
    assert behind >= 1  # the slowdown did bite: some fold got fewer epochs or was stopped
    assert (root / "submission.csv").is_file()
