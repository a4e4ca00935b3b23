"""Level 2: the new metrics, blends, fitted blend weights, meta-models and threshold search, on tiny synthetic data.
The leakage tests change one fold's labels and require that fold's level-2 predictions to stay bit-identical."""
import subprocess
import sys

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from foldstack.config.competition import Competition
from foldstack.config.levels import Stack, XGBoost
from foldstack.errors import PipelineError
from foldstack.metrics import HIGHER_IS_BETTER, comp_score, fold_scores, score
from foldstack.stacking.blend import blend, blend_cv, fit_weights, geometric_blend, rank_blend
from foldstack.stacking.meta import stack_cv
from foldstack.stacking.thresholds import search_thresholds

BINARY_AUC = Competition(task="binary", metric="roc_auc", classes=["0", "1"])
FAST = Stack(xgboost=XGBoost(n_estimators=60, learning_rate=0.1, early_stopping_rounds=10), seed=3)


def col(*values):
    return np.array(values, np.float64)[:, None]


# ---- metrics -------------------------------------------------------------------------------------------------

def test_macro_f1_by_hand():
    # binary: F1(class 1) = 4/5, F1(class 0) = 2/3
    assert score("macro_f1", col(1, 1, 1, 0), col(.9, .8, .2, .1), "binary") == pytest.approx((0.8 + 2 / 3) / 2)
    # multiclass: class 2 is never true nor predicted: left out of the average, as the graders' f1_score does
    y, p = np.eye(3)[[0, 0, 1, 1]], np.eye(3)[[0, 1, 1, 1]] * 0.8 + 0.05
    assert score("macro_f1", y, p, "multiclass") == pytest.approx((2 / 3 + 0.8) / 2)
    # ... and counted as 0 once predicted: a wrong guess of an absent class costs
    p = np.eye(3)[[0, 1, 1, 2]] * 0.8 + 0.05
    assert score("macro_f1", y, p, "multiclass") == pytest.approx((2 / 3 + 0.5 + 0) / 3)
    # multilabel: per-column F1 2/3 and 1/2, averaged
    y, p = np.array([[1, 0], [1, 1], [0, 1]]), np.array([[.9, .9], [.1, .9], [.2, .1]])
    assert score("macro_f1", y, p, "multilabel") == pytest.approx((2 / 3 + 0.5) / 2)


def test_qwk_by_hand():
    y = np.eye(3)[[0, 1, 2]]
    assert score("qwk", y, y * 0.7 + 0.1, "multiclass") == pytest.approx(1.0)
    # one off-by-one error: sum w*O = 1, sum w*E = 5 -> 1 - 1/5
    assert score("qwk", y, np.eye(3)[[0, 2, 2]], "multiclass") == pytest.approx(0.8)
    # binary on thresholded labels: po = 3/4, pe = 1/2 -> 0.5
    assert score("qwk", col(0, 0, 1, 1), col(.2, .7, .8, .9), "binary") == pytest.approx(0.5)
    assert score("qwk", col(0, 0, 1, 1), col(.2, .7, .8, .9), "binary", threshold=0.75) == pytest.approx(1.0)
    with pytest.raises(PipelineError, match="qwk"):
        score("qwk", np.eye(2), np.eye(2), "multilabel")


def test_f_beta_by_hand():
    # multilabel, sample average: row 0 P=1 R=1/3, row 1 P=1/4 R=1
    y = np.array([[1, 1, 1, 0], [0, 1, 0, 0]])
    p = np.array([[.9, .1, .1, .1], [.9, .9, .9, .9]])
    f2 = (5 * (1 / 3) / (4 + 1 / 3) + 5 * 0.25 / (4 * 0.25 + 1)) / 2
    assert score("f_beta", y, p, "multilabel") == pytest.approx(f2)
    assert score("f_beta", y, p, "multilabel", beta=1.0) == pytest.approx((0.5 + 0.4) / 2)
    comp = Competition(task="multilabel", metric="f_beta", f_beta=1.0, classes=list("abcd"))
    assert comp_score(comp, y, p) == pytest.approx(0.45)
    # binary: the positive class only (P = 1/2, R = 1/3)
    assert score("f_beta", col(1, 1, 1, 0), col(.9, .2, .1, .6), "binary") == pytest.approx(5 / 14)
    assert all(HIGHER_IS_BETTER[m] for m in ("macro_f1", "qwk", "f_beta"))


def test_per_class_thresholds_broadcast():
    y, p = np.array([[1, 1]]), np.array([[.3, .3]])
    assert score("micro_f1", y, p, "multilabel", threshold=0.5) == 0.0
    assert score("micro_f1", y, p, "multilabel", threshold=np.array([0.2, 0.4])) == pytest.approx(2 / 3)
    assert score("micro_f1", y, p, "multilabel", threshold=np.array([0.2, 0.2])) == 1.0
    with pytest.raises(PipelineError, match="threshold"):
        score("micro_f1", y, p, "multilabel", threshold=np.array([0.2, 0.2, 0.2]))


def test_fold_scores_in_fold_order():
    comp = Competition(task="binary", metric="accuracy", classes=["0", "1"], tag_threshold=0.3)
    y, p, folds = col(1, 1, 0, 0), col(.4, .9, .1, .4), np.array([1, 0, 0, 1])
    assert fold_scores(comp, y, p, folds) == [1.0, 0.5]  # fold 1: .4 > 0.3 is right for row 0, wrong for row 3
    assert fold_scores(comp, y, p, folds, threshold=0.5) == [1.0, 0.5]


# ---- blends --------------------------------------------------------------------------------------------------

def test_rank_blend_of_identical_inputs_is_their_ranks():
    rng = np.random.default_rng(0)
    for k, task in ((1, "binary"), (3, "multilabel")):
        p = rng.integers(0, 10, (40, k)) / 10  # ties: averaged ranks
        assert np.array_equal(rank_blend([p, p], task), rankdata(p, axis=0) / len(p))
    p = rng.dirichlet(np.ones(3), 20)
    assert np.allclose(rank_blend([p, p[::-1]], "multiclass").sum(1), 1)


def test_geometric_blend():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.99, (30, 1))
    assert np.allclose(geometric_blend([p, p, p], "binary"), p)
    a, b = rng.dirichlet(np.ones(4), 30), rng.dirichlet(np.ones(4), 30)
    out = geometric_blend([a, b], "multiclass")
    assert np.allclose(out.sum(1), 1) and np.allclose(out, blend("geometric", [a, b], "multiclass"))
    with pytest.raises(PipelineError):
        blend("weighted", [a, b], "multiclass")


def _bernoulli_problem(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    p_true = rng.uniform(0.02, 0.98, (n, 1))
    y = (rng.uniform(size=(n, 1)) < p_true).astype(np.float64)
    return [rng.uniform(size=(n, 1)), p_true, rng.beta(2, 2, (n, 1))], y


@pytest.mark.parametrize("objective", ["log_loss", "metric"])
def test_fitted_weights_pick_the_true_probabilities(objective):
    preds, y = _bernoulli_problem()
    w = fit_weights(preds, y, BINARY_AUC, objective=objective)
    assert w.dtype == np.float64 and w.shape == (3,)
    assert w[1] > 0.9 and (w >= 0).all() and w.sum() == pytest.approx(1)
    assert np.array_equal(fit_weights(preds[1:2], y, BINARY_AUC), [1.0])


def test_weighted_blend_cv_never_sees_the_held_fold():
    preds, y = _bernoulli_problem(n=800, seed=2)
    tests = [p[:50] for p in preds]
    folds = np.arange(len(y)) % 4
    comp = Competition(task="binary", metric="log_loss", classes=["0", "1"])
    fit = blend_cv("weighted", preds, tests, y, folds, comp)
    oof, test, info = fit.oof, fit.test, fit.info
    assert len(info["weights_per_fold"]) == 4 and np.allclose(np.mean(info["weights_per_fold"], 0), info["weights"])
    assert np.allclose(test, sum(w * p for w, p in zip(info["weights"], tests)))
    y2 = y.copy()
    y2[folds == 2] = np.random.default_rng(0).permutation(y[folds == 2])
    oof2 = blend_cv("weighted", preds, tests, y2, folds, comp).oof
    assert np.array_equal(oof2[folds == 2], oof[folds == 2])
    assert not np.array_equal(oof2[folds != 2], oof[folds != 2])  # the others did train on fold 2's labels
    rank = blend_cv("rank", preds, tests, y, folds, comp)
    assert rank.info == {} and np.array_equal(rank.test, rank_blend(tests, "binary"))


# ---- meta-models ---------------------------------------------------------------------------------------------

def _stack_problem(n=500, seed=0):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    y = (rng.uniform(size=n) < expit(2.5 * signal)).astype(np.float64)[:, None]
    informative = expit(signal + rng.normal(0, 0.5, n))
    noise = rng.uniform(size=n)
    X = np.column_stack([informative, noise])
    return X, X[:60], y, np.arange(n) % 5


@pytest.mark.parametrize("method", ["xgboost", "logreg"])
def test_stacking_learns_and_never_sees_its_fold(method):
    X, T, y, folds = _stack_problem()
    fit = stack_cv(method, X, T, y, folds, "binary", FAST)
    oof, test = fit.oof, fit.test
    assert oof.shape == y.shape and test.shape == (len(T), 1)
    auc = roc_auc_score(y[:, 0], oof[:, 0])
    assert auc > 0.8 and auc > roc_auc_score(y[:, 0], X[:, 1])
    if method == "xgboost":
        assert all(b[0] is not None and b[0] < FAST.xgboost.n_estimators for b in fit.info["best_iterations"])
    flipped = y.copy()
    flipped[folds == 1] = 1 - flipped[folds == 1]
    oof2 = stack_cv(method, X, T, flipped, folds, "binary", FAST).oof
    assert np.array_equal(oof2[folds == 1], oof[folds == 1])
    assert not np.array_equal(oof2[folds != 1], oof[folds != 1])
    again = stack_cv(method, X, T, y, folds, "binary", FAST)
    assert np.array_equal(again.oof, oof) and np.array_equal(again.test, test)


def test_multiclass_xgboost_stacking_fills_every_class():
    rng = np.random.default_rng(4)
    n, k = 300, 3
    labels = rng.integers(0, k, n)
    folds = np.arange(n) % 4
    labels[(labels == 2) & (folds != 0)] = 0  # class 2 only in fold 0: fold 0's model never sees it
    y = np.eye(k)[labels]
    X = np.clip(y * 0.6 + rng.uniform(0, 0.4, (n, k)), 0, 1)
    fit = stack_cv("xgboost", X, X[:20], y, folds, "multiclass", FAST)
    oof, test = fit.oof, fit.test
    assert oof.shape == (n, k) and test.shape == (20, k)
    assert np.allclose(oof.sum(1), 1) and np.allclose(test.sum(1), 1)
    assert (oof[folds == 0, 2] == 0).all() and (oof[folds != 0, 2] > 0).all()
    oof_lr = stack_cv("logreg", X, X[:20], y, folds, "multiclass", FAST).oof
    assert np.allclose(oof_lr.sum(1), 1) and (oof_lr[folds == 0, 2] == 0).all()


def test_multilabel_stacking_one_model_per_class():
    rng = np.random.default_rng(5)
    n = 240
    y = (rng.uniform(size=(n, 3)) < 0.4).astype(np.float64)
    folds = np.arange(n) % 4
    y[folds != 3, 2] = 0  # column 2 is all 0 in fold 3's training part: its prevalence, 0, is predicted
    X = np.clip(y * 0.5 + rng.uniform(0, 0.5, (n, 3)), 0, 1)
    for method in ("xgboost", "logreg"):
        fit = stack_cv(method, X, X[:10], y, folds, "multilabel", FAST)
        oof, test = fit.oof, fit.test
        assert oof.shape == (n, 3) and test.shape == (10, 3)
        assert (oof[folds == 3, 2] == 0).all()
        assert roc_auc_score(y[:, 0], oof[:, 0]) > 0.9


def test_stack_errors_are_one_line():
    X, T, y, folds = _stack_problem(n=50)
    with pytest.raises(PipelineError, match="meta-model"):
        stack_cv("svm", X, T, y, folds, "binary", FAST)
    with pytest.raises(PipelineError, match="folds"):
        stack_cv("logreg", X, T, y, folds[:-1], "binary", FAST)


# ---- thresholds ----------------------------------------------------------------------------------------------

def test_threshold_search_improves_f_beta_on_underconfident_probabilities():
    rng = np.random.default_rng(6)
    q = rng.uniform(size=(400, 3))
    y = (rng.uniform(size=q.shape) < q).astype(np.float64)
    p = q * 0.4  # calibrated low: nothing clears 0.5
    comp = Competition(task="multilabel", metric="f_beta", classes=list("abc"))
    t = search_thresholds(comp, y, p)
    assert t.shape == (3,) and (t < 0.4).all()
    assert comp_score(comp, y, p, t) > comp_score(comp, y, p) + 0.1
    assert np.array_equal(search_thresholds(comp, y, p), t)
    multiclass = Competition(task="multiclass", metric="f_beta", classes=list("abc"), tag_threshold=0.3)
    assert np.array_equal(search_thresholds(multiclass, np.eye(3)[[0, 1, 2]], np.eye(3)), [0.3] * 3)


def test_stacking_does_not_import_torch():
    code = "import sys, foldstack.stacking; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- level 2 as files ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_saved_logistic_regression_predicts_as_sklearn(n_classes, dtype):
    """The arrays of a fitted StandardScaler + LogisticRegression, predicted with numpy: sklearn's predict_proba
    within 1e-12 (a constant column included: its scale is 1), in the input's dtype."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from foldstack.stacking.persist import LogisticModel

    rng = np.random.default_rng(n_classes)
    x = rng.normal(size=(120, 5)).astype(dtype)
    x[:, 3] = 0.5
    fitted = make_pipeline(StandardScaler(), LogisticRegression(C=0.3, max_iter=1000)).fit(x, rng.integers(0, n_classes,
                                                                                                         120))
    new = rng.normal(size=(40, 5)).astype(dtype) * 3
    want, got = fitted.predict_proba(new), LogisticModel.from_pipeline(fitted).predict_proba(new)
    assert got.dtype == want.dtype and got.shape == (40, n_classes)
    assert np.abs(got - want).max() <= 1e-12
    assert np.abs(got.sum(1) - 1).max() < 1e-5 and got.std() > 0.01  # real probabilities, not a constant


def test_a_level2_that_does_not_load_back_as_fitted_is_refused(tmp_path):
    """save_checked: the loaded model must predict the test predictions it was fitted to give (within 1e-6)."""
    from foldstack.stacking.level import fit_level
    from foldstack.stacking.persist import LEVEL_FILE, save_checked

    rng = np.random.default_rng(0)
    y = (rng.random((40, 1)) < 0.5).astype(float)
    oofs, tests = [np.clip(y * 0.7 + rng.random((40, 1)) * 0.3, 0, 1)], [rng.random((10, 1))]
    fit = fit_level("logreg", oofs, tests, y, np.arange(40) % 4, BINARY_AUC, FAST)
    record = save_checked(tmp_path / "ok", fit.model, tests, None, fit.test)
    assert record == {"files": [LEVEL_FILE, "level2.npz"], "max_abs_diff": 0.0}
    with pytest.raises(PipelineError, match=r"nudged: the saved level 2, loaded back, differs .* by 0\.001"):
        save_checked(tmp_path / "nudged", fit.model, tests, None, fit.test + 1e-3)
