"""Metric variants as the competitions define them: hand-computed values from each Evaluation text, then the
MLE-bench grader's own scikit-learn call on random cases (its grade.py: log_loss, a loop of roc_auc_score,
f1_score(average="macro"), cohen_kappa_score(weights="quadratic"))."""
import time
import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score, log_loss, roc_auc_score

from foldstack.metrics import score

FLOOR = -np.log(1e-15)  # 34.539: a true class given probability 0 costs this after the 1e-15 clip


def one_hot(labels, k):
    return np.eye(k)[labels]


def random_rows(rng, n, k):
    p = rng.random((n, k)) ** 3
    return p / p.sum(1, keepdims=True)


# ---- log loss: leaf-classification, dog-breed-identification; statoil, dogs-vs-cats -----------------------------

def test_multiclass_log_loss_rescales_rows_then_clips_as_leafs_text():
    y = one_hot([0, 2, 1], 3)
    p = np.array([[2.0, 1.0, 1.0],  # rescaled to 0.5, 0.25, 0.25: -log 0.5
                  [0.0, 0.0, 0.3],  # rescaled to 1: clipped to 1 - 1e-15, -log of that is ~0
                  [0.7, 0.0, 0.3]])  # true class 0: clipped to 1e-15
    assert score("log_loss", y, p, "multiclass") == pytest.approx((np.log(2) + 0 + FLOOR) / 3, rel=1e-9)
    assert score("log_loss", y[:1], np.zeros((1, 3)), "multiclass") == pytest.approx(FLOOR)  # nothing predicted


def test_binary_log_loss_clips_both_ends():
    y = np.array([[1], [0], [1], [0]])
    p = np.array([[0.8], [0.25], [0.0], [1.0]])
    expected = (-np.log(0.8) - np.log(0.75) + FLOOR + FLOOR) / 4
    assert score("log_loss", y, p, "binary") == pytest.approx(expected, abs=1e-3)  # 1 - (1 - 1e-15) rounds


@pytest.mark.parametrize("seed", range(3))
def test_log_loss_matches_the_graders_sklearn_call(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 120, 300)
    p = random_rows(rng, 300, 120)  # dog-breed: 120 columns, rows summing to one (the grader refuses others)
    assert score("log_loss", one_hot(labels, 120), p, "multiclass") == pytest.approx(
        log_loss(one_hot(labels, 120), p), rel=1e-9)
    yb, pb = rng.integers(0, 2, 300), rng.random(300)  # statoil / dogs-vs-cats: log_loss(y_true, y_pred)
    assert score("log_loss", yb[:, None], pb[:, None], "binary") == pytest.approx(log_loss(yb, pb), rel=1e-9)


def test_log_loss_differs_from_the_grader_only_below_the_clip():
    # MLE-bench's scikit-learn (>= 1.5) clips at float64's eps (2.2e-16), not Kaggle's 1e-15
    y, p = one_hot([0, 1], 2), np.array([[0.0, 1.0], [0.5, 0.5]])
    assert score("log_loss", y, p, "multiclass") == pytest.approx((FLOOR + np.log(2)) / 2)
    assert log_loss(y, p) == pytest.approx((-np.log(np.finfo(float).eps) + np.log(2)) / 2)


# ---- mean column-wise ROC AUC: plant-pathology-2020-fgvc7 (one-hot), ranzcr (11 tags) ---------------------------

def test_mean_column_auc_by_hand():
    # column 0: positives rows 0, 3 (0.9, 0.4) against negatives (0.3, 0.5): 3 of 4 pairs ordered -> 0.75
    # column 1: positives rows 1, 2 (0.6, 0.2) against negatives (0.1, 0.5): 3 of 4 pairs ordered -> 0.75
    y = np.array([[1, 0], [0, 1], [0, 1], [1, 0]])
    p = np.array([[0.9, 0.1], [0.3, 0.6], [0.5, 0.2], [0.4, 0.5]])
    assert score("roc_auc", y, p, "multiclass") == pytest.approx(0.75)
    assert score("roc_auc", y, p, "multilabel") == pytest.approx(0.75)


def test_mean_column_auc_reads_the_columns_as_submitted():
    # as submitted: column 0's positive 0.7 beats one of its negatives (0.9, 0.1), column 1's positives (0.9, 0.1)
    # beat its negative 0.3 once of twice: 0.5 each. Rows rescaled to sum to one would score 1.0
    y = np.array([[1, 0], [0, 1], [0, 1]])
    p = np.array([[0.7, 0.3], [0.9, 0.9], [0.1, 0.1]])
    assert score("roc_auc", y, p, "multiclass") == pytest.approx(0.5)
    assert np.mean([roc_auc_score(y[:, k], p[:, k]) for k in range(2)]) == pytest.approx(0.5)  # grade.py's loop


@pytest.mark.parametrize("task, k", [("multiclass", 4), ("multilabel", 11), ("binary", 1)])
def test_mean_column_auc_matches_the_graders_loop(task, k):
    rng = np.random.default_rng(k)
    y = (one_hot(np.arange(200) % 4, 4) if task == "multiclass" else (rng.random((200, k)) < 0.3).astype(float))
    p = y * rng.random((200, k)) + rng.random((200, k))
    graders = np.mean([roc_auc_score(y[:, j], p[:, j]) for j in range(k)])
    assert score("roc_auc", y, p, task) == pytest.approx(graders, rel=1e-12)


def test_mean_column_auc_is_nan_with_a_single_class_column():
    y = np.array([[1, 0], [1, 0], [0, 0]])  # column 1 has no positive
    assert np.isnan(score("roc_auc", y, np.random.default_rng(0).random((3, 2)), "multilabel"))


# ---- macro F1: herbarium-2022-fgvc9 (15,501 classes), human-protein-atlas (28 tags) -----------------------------

def test_multiclass_macro_f1_over_the_classes_present_by_hand():
    # classes 0..4; class 4 neither true nor predicted is left out. F1: class 0 2/3 (TP 1, FN 1), class 1 2/3
    # (TP 1, FP 1), class 2 0 (FN 1), class 3 0 (FP 1): (2/3 + 2/3) / 4
    y, p = one_hot([0, 0, 1, 2], 5), one_hot([0, 1, 1, 3], 5)
    assert score("macro_f1", y, p, "multiclass") == pytest.approx(1 / 3)


def test_multilabel_macro_f1_counts_every_tag_by_hand():
    # tag 0: TP 2 -> 1; tag 1: TP 1, FN 1 -> 2/3; tag 2: never true, predicted once -> 0
    y = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 0]])
    p = np.array([[.9, .8, .1], [.7, .2, .6], [.1, .3, .2]])
    assert score("macro_f1", y, p, "multilabel") == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_macro_f1_matches_the_graders_call():
    rng = np.random.default_rng(1)
    true = rng.integers(0, 300, 500)
    pred = np.where(rng.random(500) < 0.5, true, rng.integers(0, 300, 500))
    with warnings.catch_warnings():  # the grader's default zero_division warns, then counts 0 as we do
        warnings.simplefilter("ignore")
        graders = f1_score(y_true=true, y_pred=pred, average="macro")
        y, p = (rng.random((400, 28)) < 0.2).astype(float), rng.random((400, 28))
        graders_tags = f1_score(y, (p > 0.5).astype(int), average="macro")
    assert score("macro_f1", one_hot(true, 300), one_hot(pred, 300), "multiclass") == pytest.approx(graders)
    assert score("macro_f1", y, p, "multilabel") == pytest.approx(graders_tags)


def test_macro_f1_over_herbariums_15501_classes_copies_no_matrix():
    rng, n, k = np.random.default_rng(2), 1000, 15501
    y = np.zeros((n, k), np.float32)
    y[np.arange(n), rng.integers(0, k, n)] = 1
    p = rng.random((n, k), dtype=np.float32)
    tracemalloc.start()
    start = time.perf_counter()
    value = score("macro_f1", y, p, "multiclass")
    seconds, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert 0 <= value < 0.01 and seconds < 5
    assert peak < p.nbytes / 20  # class indices only, no (N, K) float64 or one-hot copy


# ---- quadratic weighted kappa: aptos2019-blindness-detection -----------------------------------------------------

def test_qwk_from_aptos_text_by_hand():
    # O off-diagonal only at (3, 4): sum(w O) = 1; E = outer(hist_true, hist_pred) / 5, sum(w E) = 115 / 5 = 23
    y, p = one_hot([0, 1, 2, 3, 4], 5), one_hot([0, 1, 2, 4, 4], 5)
    assert score("qwk", y, p, "multiclass") == pytest.approx(1 - 1 / 23)
    # grade 2 in neither: the text's weights still span 0..4 (sum(w E) = 92 / 4 = 23); the grader's default labels
    # (the grades present) would squeeze 3 and 4 to positions 2 and 3 (11/12)
    y, p = one_hot([0, 1, 3, 4], 5), one_hot([0, 1, 4, 4], 5)
    assert score("qwk", y, p, "multiclass") == pytest.approx(1 - 1 / 23)
    assert cohen_kappa_score([0, 1, 4, 4], [0, 1, 3, 4], weights="quadratic") == pytest.approx(11 / 12)


def test_qwk_matches_the_graders_call_when_every_grade_appears():
    rng = np.random.default_rng(3)
    true = np.r_[np.arange(5), rng.integers(0, 5, 300)]
    pred = np.clip(true + rng.integers(-1, 2, len(true)), 0, 4)
    graders = cohen_kappa_score(pred, true, weights="quadratic")
    assert score("qwk", one_hot(true, 5), one_hot(pred, 5) * 0.8 + 0.04, "multiclass") == pytest.approx(graders)
