"""The level-2 stacker of a regression (stacking/regress.py): XGBRegressor and Ridge on the scaled level-1 values and
tabular columns, fold-honest, clipped to the scaled range, saved and loaded back as a bundle's kernel loads it; and
the weighted blend fitted on squared error. Tiny generated data, in-process."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from foldstack.artifacts import write_manifest
from foldstack.config.competition import Competition
from foldstack.config.levels import Stack, XGBoost
from foldstack.config.schema import Config
from foldstack.data.table import Table
from foldstack.errors import PipelineError
from foldstack.metrics import comp_score
from foldstack.predictions import Predictions
from foldstack.stacking.blend import fit_weights
from foldstack.stacking.level import fit_level
from foldstack.stacking.meta import stack_cv
from foldstack.stacking.persist import LEVEL_DIR, LEVEL_FILE, load_level, save_checked
from foldstack.stages.stack import level_two

PAW = Competition(id_col="Id", target_cols=["Pawpularity"], task="regression", metric="rmse", classes=[],
                  submission_format="value", target_range=[[1.0, 100.0]])
FAST = Stack(xgboost=XGBoost(n_estimators=80, learning_rate=0.1, early_stopping_rounds=10), seed=3)


def _level1(n: int, seed: int):
    """Two level-1 models' scaled predictions (each a noisy view of one latent factor), a tabular column and the
    folds."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(size=(n, 2))
    oofs = [np.clip(u[:, [i]] + rng.normal(0, 0.03, (n, 1)), 0, 1) for i in range(2)]
    return u, oofs, rng.normal(size=n), np.arange(n) % 4


def test_xgboost_stacker_learns_a_nonlinear_target_and_the_tabular_column(tmp_path):
    """Target: the product of the two factors, plus 0.3 when the tabular flag is set. The mean blend cannot
    multiply nor see the flag; the XGBRegressor fed the column as for a classification (level_two) can."""
    n, m = 400, 40
    u, oofs, _, folds = _level1(n + m, seed=1)
    flag = np.random.default_rng(2).integers(0, 2, n + m)
    y = (0.65 * u[:, 0] * u[:, 1] + 0.3 * flag)[:, None]
    frame = pd.DataFrame({"Id": [f"p{i}" for i in range(n + m)], "Blur": flag,
                          "Pawpularity": (1 + 99 * y[:, 0]).round(3)})
    train = Table(frame.Id[:n].tolist(), [tmp_path / "x.jpg"] * n, frame[:n], "train.csv")
    test = Table(frame.Id[n:].tolist(), [tmp_path / "x.jpg"] * m, frame[n:].drop(columns="Pawpularity"),
                 "sample_submission.csv")
    comp = PAW.model_copy(update={"tabular_cols": {"Blur": "binary"}})
    stack = FAST.model_copy(update={"method": "xgboost", "compare": ["mean", "weighted"]})
    ctx = SimpleNamespace(cfg=Config(competition=comp, stack=stack), targets=y[:n], train=train, test=test,
                          root=tmp_path, comp="pawpularity")
    preds = {f"e{i}": Predictions(o[:n], o[n:], folds[:n]) for i, o in enumerate(oofs)}
    levels, fitted, (model, _, test_meta) = level_two(ctx, preds, folds[:n])
    rmse = {name: comp_score(comp, y[:n], oof) for name, (_, oof, _) in levels.items()}
    assert rmse["stack:xgboost"] < 0.3 * rmse["blend:mean"], rmse  # in Pawpularity units: 3.0 against 24.6
    assert rmse["blend:weighted"] <= rmse["blend:mean"] + 1e-9
    assert model.n_features == 3 and test_meta.shape == (m, 1)  # the two values, then Blur as 0/1
    test_pred = levels["stack:xgboost"][2]
    assert comp_score(comp, y[n:], test_pred) < 0.5 * comp_score(comp, y[n:], (oofs[0][n:] + oofs[1][n:]) / 2)
    assert all(b[0] is not None and b[0] < FAST.xgboost.n_estimators for b in fitted["stack:xgboost"]
               ["best_iterations"])


def test_ridge_beats_the_mean_on_a_linear_combination_and_is_fold_honest():
    n = 300
    u, oofs, tab, folds = _level1(n, seed=3)
    y = np.clip(0.2 + 0.6 * u[:, 0] - 0.2 * u[:, 1] + 0.08 * tab, 0, 1)[:, None]
    fit = fit_level("ridge", oofs, [o[:30] for o in oofs], y, folds, PAW, FAST.model_copy(update={"method": "ridge"}),
                    tab[:, None], tab[:30, None])
    mean = (oofs[0] + oofs[1]) / 2
    assert comp_score(PAW, y, fit.oof) < 0.3 * comp_score(PAW, y, mean)
    assert fit.test.shape == (30, 1) and np.all((fit.oof >= 0) & (fit.oof <= 1))
    # fold 1's targets changed: fold 1's OOF comes from models that never saw them, so it stays bit-identical
    changed = y.copy()
    changed[folds == 1] = 1 - changed[folds == 1]
    for method in ("ridge", "xgboost"):
        X = np.hstack([*oofs, tab[:, None]])
        a, b = (stack_cv(method, X, X[:5], t, folds, "regression", FAST).oof for t in (y, changed))
        assert np.array_equal(a[folds == 1], b[folds == 1]) and not np.array_equal(a[folds != 1], b[folds != 1])


def test_predictions_are_clipped_to_the_scaled_range():
    n = 200
    u, oofs, _, folds = _level1(n, seed=4)
    X = np.hstack(oofs)
    y = np.clip(0.5 + 0.5 * u[:, [0]], 0, 1)
    far = np.array([[3.0, 0.5], [-2.0, 0.5]])  # far outside the fitted values: the line leaves [0, 1]
    for method in ("ridge", "xgboost"):
        test = stack_cv(method, X, far, y, folds, "regression", FAST).test
        assert test.min() >= 0 and test.max() <= 1
    assert stack_cv("ridge", X, far, y, folds, "regression", FAST).test[0, 0] == 1.0


def test_the_classifier_and_regressor_names_do_not_cross():
    u, oofs, _, folds = _level1(40, seed=5)
    with pytest.raises(PipelineError, match="stack.method=logreg classifies; a regression stacks with ridge"):
        stack_cv("logreg", oofs[0], oofs[0], u[:, :1], folds, "regression", FAST)
    with pytest.raises(PipelineError, match="stack.method=ridge is a regressor; a binary task stacks with logreg"):
        stack_cv("ridge", oofs[0], oofs[0], (u[:, :1] > 0.5).astype(float), folds, "binary", FAST)


@pytest.mark.parametrize("method", ["ridge", "xgboost"])
def test_the_saved_level2_round_trips_and_is_bundled(tmp_path, method):
    """make stack saves it (save_checked), make bundle copies it (copy_level2), the kernel loads it (load_level):
    identical predictions, on the stored test values and on new ones."""
    from foldstack.stages.bundle import copy_level2

    n = 160
    u, oofs, _, folds = _level1(n, seed=6)
    y = (0.3 + 0.4 * u[:, [0]] * u[:, [1]])
    tests = [o[:20] for o in oofs]
    fit = fit_level(method, oofs, tests, y, folds, PAW, FAST.model_copy(update={"method": method}))
    stack = tmp_path / "stacks" / "pawpularity" / "abc"
    stack.mkdir(parents=True)
    record = save_checked(stack / LEVEL_DIR, fit.model, tests, None, fit.test)
    boosters = [f"fold{k}_unit0.json" for k in range(4)]
    assert record == {"files": [LEVEL_FILE, "level2.npz"] if method == "ridge" else [LEVEL_FILE, *boosters],
                      "max_abs_diff": 0.0}
    write_manifest(stack, "stack", "abc", {}, fold_key="f",
                   level2=dict(record, method=method, meta_features=[], tabular_cols=[]))
    copy_level2(SimpleNamespace(root=tmp_path, comp="pawpularity"), stack, tmp_path / "bundle" / "level2")
    loaded = load_level(tmp_path / "bundle" / "level2")
    assert np.array_equal(loaded.predict(tests), fit.test)
    new = [np.random.default_rng(7).uniform(size=(15, 1)) for _ in range(2)]
    assert np.array_equal(loaded.predict(new), fit.model.predict(new))


def test_weighted_blend_of_a_regression_fits_squared_error():
    """The first input is noisy everywhere, the second exact at the ends and off in the middle: least squares and
    log loss weigh them differently (0.45 against 0.39). A regression's weights are the least-squares ones, which
    two inputs have in closed form."""
    rng = np.random.default_rng(8)
    y = rng.uniform(0.02, 0.98, (300, 1))
    a = np.clip(y + rng.normal(0, 0.15, y.shape), 0.01, 0.99)
    b = np.clip(y + 0.15 * np.sign(0.5 - y) * (np.abs(y - 0.5) < 0.3), 0.01, 0.99)
    least_squares = ((a - b) * (y - b)).sum() / ((a - b) ** 2).sum()
    w = fit_weights([a, b], y, PAW)
    assert w == pytest.approx([least_squares, 1 - least_squares], abs=1e-4) and abs(least_squares - 0.45) < 0.01
    as_probabilities = fit_weights([a, b], y, PAW.model_copy(update={"task": "binary"}))  # log loss
    assert abs(as_probabilities[0] - least_squares) > 0.04
