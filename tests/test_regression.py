"""Regression as a task (petfinder-pawpularity-score): metrics on hand-computed cases, the target's scaling, folds
stratified on quantile bins, losses, discovery of a petfinder-like folder, and one run of the stage scripts whose
submission is scored by an RMSE written here from the evaluation text."""
import math
import re

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from conftest import TINY, run_here
from foldstack.config.competition import Competition
from foldstack.config.training import Loss
from foldstack.data.splits import assign_folds
from foldstack.description import described_metric
from foldstack.discover import discover_competition
from foldstack.errors import PipelineError
from foldstack.loss.factory import create_loss
from foldstack.metrics import comp_score, is_better, score
from foldstack.regression import binned_labels, regression_targets, scale, unscale
from foldstack.submission import build_submission, validate_submission

FLAGS = ["Subject Focus", "Eyes", "Face", "Near", "Action", "Accessory", "Group", "Collage", "Human", "Occlusion",
         "Info", "Blur"]  # petfinder's 12 photo flags
COMP = Competition(task="regression", target_cols=["Pawpularity"], classes=[], metric="rmse", id_col="Id",
                   submission_format="value", submission_columns=["Id", "Pawpularity"], target_range=[(1.0, 100.0)])


def test_metrics_on_hand_computed_cases():
    y, p = np.array([[1.0], [2.0]]), np.array([[1.0], [4.0]])
    assert score("rmse", y, p, "regression") == pytest.approx(math.sqrt(2))  # sqrt((0 + 4) / 2)
    assert score("mae", y, p, "regression") == pytest.approx(1.0)  # (0 + 2) / 2
    # r2 = 1 - SS_res / SS_tot = 1 - 4 / 0.5
    assert score("r2", y, p, "regression") == pytest.approx(-7.0)
    y3, p3 = np.array([[3.0], [5.0], [7.0]]), np.array([[2.5], [5.0], [8.0]])
    assert score("r2", y3, p3, "regression") == pytest.approx(1 - 1.25 / 8)
    assert is_better("rmse", 1.0, 2.0) and not is_better("mae", 3.0, 2.0) and is_better("r2", 0.5, 0.1)


def test_comp_score_unscales_and_the_scaling_round_trips():
    values = np.array([[1.0], [50.5], [100.0]])
    scaled = scale(values, COMP.target_range)
    assert scaled[:, 0].tolist() == [0.0, 0.5, 1.0]
    assert np.allclose(unscale(scaled, COMP.target_range), values)
    # predictions 0.1 off in scaled units are 9.9 off in Pawpularity
    assert comp_score(COMP, scaled, scaled + 0.1) == pytest.approx(9.9)
    frame = pd.DataFrame({"Id": ["a", "b"], "Pawpularity": ["1", "100"]})
    assert regression_targets(frame, COMP, "train.csv").tolist() == [[0.0], [1.0]]
    with pytest.raises(PipelineError, match=r"^train.csv row 3: target \[101.0\] outside competition.target_range"):
        regression_targets(frame.assign(Pawpularity=["1", "101"]), COMP, "train.csv")
    with pytest.raises(PipelineError, match=r"^train.csv row 2: Pawpularity='cute' is not a number"):
        regression_targets(frame.assign(Pawpularity=["cute", "1"]), COMP, "train.csv")


def test_folds_on_binned_target_are_balanced():
    y = np.random.default_rng(0).gamma(2.0, 10.0, (500, 1))
    bins = binned_labels(y, 10)
    assert sorted(np.bincount(bins).tolist()) == [50] * 10  # quantile bins: 50 rows each
    folds = assign_folds(500, 5, 42, "auto", bins)
    for k in range(5):  # each fold holds a fifth of every bin: the whole range, in the same proportions
        assert np.bincount(bins[folds == k], minlength=10).tolist() == [10] * 10


def test_regression_losses_and_refusals():
    logits, target = torch.tensor([[0.0], [0.0]]), torch.tensor([[0.5], [1.0]])
    assert create_loss(Loss(name="mse"), "regression")(logits, target).item() == pytest.approx((0 + 0.25) / 2)
    assert create_loss(Loss(), "regression")(logits, target).item() == pytest.approx(0.125)  # auto: mse
    huber = create_loss(Loss(name="huber"), "regression")(logits, target).item()
    assert huber == pytest.approx((0 + 0.1 * (0.5 - 0.05)) / 2)  # delta 0.1: linear past it
    bce = create_loss(Loss(name="bce"), "regression")(logits, target).item()
    assert bce == pytest.approx(math.log(2))  # sigmoid(0) = 0.5 against any target in [0, 1]
    with pytest.raises(PipelineError, match="loss.name=focal is a classification loss"):
        create_loss(Loss(name="focal"), "regression")
    with pytest.raises(PipelineError, match="loss.name=mse needs a regression task"):
        create_loss(Loss(name="mse"), "multiclass")


def test_submission_holds_values_in_the_sample_order():
    sample = pd.DataFrame({"Id": ["b", "a"], "Pawpularity": [67.75, 1.0]})
    sub = build_submission(COMP, ["b", "a"], np.array([[0.0], [0.5]]))
    assert sub["Pawpularity"].tolist() == [1.0, 50.5] and sub["Id"].tolist() == ["b", "a"]
    validate_submission(sub, sample, COMP)
    with pytest.raises(PipelineError, match=r"row 3: Pawpularity='x' is not a number"):
        validate_submission(sub.assign(Pawpularity=["1", "x"]), sample, COMP)


def write_petfinder(folder, n_train: int, n_test: int, seed: int = 0) -> pd.DataFrame:
    """Petfinder's names and shapes: train.csv = Id, 12 flags, Pawpularity (1-100, the image's brightness);
    train/<Id>.jpg, test/<Id>.jpg; sample_submission Id,Pawpularity (random floats, as MLE-bench's). Returns
    the test rows' true values."""
    rng = np.random.default_rng(seed)
    for part in ("train", "test"):
        (folder / part).mkdir(parents=True)
    values = rng.integers(1, 101, n_train + n_test)
    ids = [f"{i:032x}" for i in rng.integers(0, 2 ** 62, n_train + n_test)]
    for i, (name, v) in enumerate(zip(ids, values)):
        gray = np.clip(int(v * 2.4) + rng.integers(-8, 9, (24, 24)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / ("train" if i < n_train else "test") / f"{name}.jpg"), np.dstack([gray] * 3))
    flags = {f: rng.integers(0, 2, n_train) for f in FLAGS}
    pd.DataFrame({"Id": ids[:n_train], **flags, "Pawpularity": values[:n_train]}).to_csv(folder / "train.csv",
                                                                                       index=False)
    pd.DataFrame({"Id": ids[n_train:], "Pawpularity": rng.uniform(1, 100, n_test).round(2)}).to_csv(
        folder / "sample_submission.csv", index=False)
    return pd.DataFrame({"Id": ids[n_train:], "Pawpularity": values[n_train:]})


def test_discovers_petfinder_as_regression(tmp_path):
    write_petfinder(tmp_path / "petfinder-pawpularity-score", 30, 5)
    comp = discover_competition(tmp_path / "petfinder-pawpularity-score")
    assert (comp["task"], comp["metric"], comp["submission_format"]) == ("regression", "rmse", "value")
    assert comp["target_cols"] == ["Pawpularity"] and comp["classes"] == []
    train = pd.read_csv(tmp_path / "petfinder-pawpularity-score" / "train.csv")
    assert comp["target_range"] == [[float(train.Pawpularity.min()), float(train.Pawpularity.max())]]
    text = "## Evaluation\n\nSubmissions are scored on mean absolute error.\n"
    assert described_metric(text, "regression")[0] == "mae"


@pytest.mark.slow  # trains through the stage scripts in this process (run_here)
def test_petfinder_like_end_to_end(project):
    truth = write_petfinder(project / "input" / "pawpularity", 60, 20, seed=3)
    runs = {script: run_here(project, script, "pawpularity", *TINY, "train.epochs=10", "data.img_size=16",
                             "predict.tta=[]", "train.lr=0.003")
            for script in ("01_folds.py", "02_train.py", "03_predict.py", "05_stack.py", "06_submit.py", "report.py")}
    # the report's residuals, in Pawpularity units, give the CV the predict stage printed
    cv = float(re.search(r"OOF CV rmse: ([0-9.]+)", runs["03_predict.py"].stderr).group(1))
    residuals = pd.read_csv(next((project / "reports" / "pawpularity").glob("baseline/residuals.csv")))
    assert residuals["rmse"].iloc[0] == pytest.approx(cv, rel=1e-4)
    sub = pd.read_csv(project / "submission.csv")
    assert sub["Id"].tolist() == truth["Id"].tolist()
    # RMSE as the evaluation text defines it: sqrt(mean((y - y_hat)^2))
    rmse = np.sqrt(np.mean((truth["Pawpularity"].to_numpy() - sub["Pawpularity"].to_numpy()) ** 2))
    train_mean = pd.read_csv(project / "input" / "pawpularity" / "train.csv")["Pawpularity"].mean()
    baseline = np.sqrt(np.mean((truth["Pawpularity"].to_numpy() - train_mean) ** 2))
    assert rmse < 0.8 * baseline, (rmse, baseline)


def test_fractional_guesses_in_the_sample_make_a_few_integer_values_a_regression():
    """MLE-bench's petfinder sample holds uniform floats: with 12 integer values in train (fewer than classes go)
    that is a regression; a 0/1 target with P = 0.5 in its sample stays binary."""
    from foldstack.regression import discover_regression

    train = pd.DataFrame({"Pawpularity": [str(v) for v in (3, 17, 25, 40, 41, 55, 62, 70, 71, 88, 90, 99)]})
    assert discover_regression(train, ["Pawpularity"], pd.DataFrame({"Pawpularity": ["12.37", "80.5"]}))["task"] \
        == "regression"
    assert discover_regression(train, ["Pawpularity"], pd.DataFrame({"Pawpularity": ["12", "80"]})) is None
    binary = pd.DataFrame({"has_cactus": ["0", "1", "1", "0"]})
    assert discover_regression(binary, ["has_cactus"], pd.DataFrame({"has_cactus": ["0.5", "0.5"]})) is None
