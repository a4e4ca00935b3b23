import numpy as np
import pytest

from foldstack.data.splits import assign_folds
from foldstack.errors import PipelineError

rng = np.random.default_rng(0)
LABELS = rng.choice(3, size=300, p=[0.6, 0.3, 0.1])


def test_each_row_in_exactly_one_fold_and_sizes_balanced():
    folds = assign_folds(300, 5, seed=1, labels=LABELS)
    assert folds.shape == (300,) and set(folds) == set(range(5))
    sizes = np.bincount(folds)
    assert sizes.sum() == 300 and sizes.max() - sizes.min() <= 1


def test_same_inputs_same_folds_other_seed_other_folds():
    a = assign_folds(300, 5, seed=1, labels=LABELS)
    assert np.array_equal(a, assign_folds(300, 5, seed=1, labels=LABELS))
    assert not np.array_equal(a, assign_folds(300, 5, seed=2, labels=LABELS))


def test_stratified_folds_keep_class_ratios():
    folds = assign_folds(300, 5, seed=1, labels=LABELS)
    overall = np.bincount(LABELS) / len(LABELS)
    for k in range(5):
        ratio = np.bincount(LABELS[folds == k], minlength=3) / (folds == k).sum()
        assert np.abs(ratio - overall).max() < 0.03


def test_groups_never_straddle_folds():
    groups = rng.integers(0, 40, size=300)
    for method in ("group", "stratified_group", "auto"):
        folds = assign_folds(300, 4, seed=0, method=method, labels=LABELS, groups=groups)
        for g in np.unique(groups):
            assert len(set(folds[groups == g])) == 1, method


def test_plain_kfold_for_multilabel_and_clear_errors():
    folds = assign_folds(50, 5, seed=0, labels=None)
    assert np.bincount(folds).tolist() == [10] * 5
    with pytest.raises(PipelineError, match="group_col"):
        assign_folds(50, 5, seed=0, method="group", labels=None)
    with pytest.raises(PipelineError, match="n_splits"):
        assign_folds(3, 5, seed=0)
