"""Pseudo-label selection: exactly the expected test rows, class ratio kept, soft targets as predicted."""
import numpy as np
import pytest

from foldstack.errors import PipelineError
from foldstack.pseudo import confidence, select_pseudo


def test_threshold_picks_exactly_the_confident_rows():
    p = np.array([[.97, .02, .01], [.5, .3, .2], [.01, .95, .04], [.2, .2, .6], [.0, .04, .96]])
    idx, targets, conf = select_pseudo(p, "multiclass", "threshold", threshold=0.95)
    assert idx.tolist() == [0, 2, 4] and targets.argmax(1).tolist() == [0, 1, 2]
    assert np.array_equal(targets.sum(1), np.ones(3)) and np.allclose(conf, [.97, .95, .96])


def test_binary_and_multilabel_confidence_counts_both_sides():
    assert np.allclose(confidence(np.array([[.98], [.01], [.6]]), "binary"), [.98, .99, .6])
    # multilabel: the least sure tag decides
    assert np.allclose(confidence(np.array([[.99, .02], [.99, .5]]), "multilabel"), [.98, .5])
    idx, targets, _ = select_pseudo(np.array([[.98], [.01], [.6]]), "binary", "threshold", threshold=0.95)
    assert idx.tolist() == [0, 1] and targets[:, 0].tolist() == [1, 0]


def test_top_fraction_keeps_the_predicted_class_ratio_and_takes_the_most_confident():
    rng = np.random.default_rng(0)
    counts = {0: 60, 1: 30, 2: 10}
    rows = []
    for c, n in counts.items():
        top = rng.uniform(0.55, 1.0, n)  # above 0.5: the argmax is class c
        row = np.full((n, 3), 0.0)
        row[:, c] = top
        row[:, (c + 1) % 3] = 1 - top
        rows.append(row)
    p = np.vstack(rows)[rng.permutation(100)]
    idx, targets, conf = select_pseudo(p, "multiclass", "top_fraction", fraction=0.5)
    picked = np.bincount(targets.argmax(1), minlength=3)
    assert picked.tolist() == [30, 15, 5]  # half of each predicted class: ratio 6:3:1 kept
    for c in range(3):
        in_class = np.flatnonzero(p.argmax(1) == c)
        chosen = set(idx) & set(in_class)
        threshold = min(p[i].max() for i in chosen)
        assert all(p[i].max() <= threshold for i in set(in_class) - chosen)  # nothing more confident left out
    assert np.all(np.diff(idx) > 0)


def test_all_rows_with_soft_targets_are_the_predictions():
    p = np.random.default_rng(1).dirichlet(np.ones(4), 12)
    idx, targets, _ = select_pseudo(p, "multiclass", "all", soft=True)
    assert idx.tolist() == list(range(12)) and np.allclose(targets, p)


def test_unknown_rule_is_refused():
    with pytest.raises(PipelineError, match="pseudo.rule"):
        select_pseudo(np.eye(3), "multiclass", "best")
