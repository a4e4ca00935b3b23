"""Pseudo-label selection: exactly the expected test rows, class ratio kept, soft targets as predicted."""
import numpy as np
import pytest

from foldstack.errors import PipelineError
from foldstack.pseudo.select import confidence, select_pseudo


def test_threshold_picks_exactly_the_confident_rows():
    p = np.array([[.97, .02, .01], [.5, .3, .2], [.01, .95, .04], [.2, .2, .6], [.0, .04, .96]])
    picked = select_pseudo(p, "multiclass", "threshold", threshold=0.95)
    idx, targets, conf = picked.rows, picked.targets, picked.confidence
    assert idx.tolist() == [0, 2, 4] and targets.argmax(1).tolist() == [0, 1, 2]
    assert np.array_equal(targets.sum(1), np.ones(3)) and np.allclose(conf, [.97, .95, .96])


def test_binary_and_multilabel_confidence_counts_both_sides():
    assert np.allclose(confidence(np.array([[.98], [.01], [.6]]), "binary"), [.98, .99, .6])
    # multilabel: the least sure tag decides
    assert np.allclose(confidence(np.array([[.99, .02], [.99, .5]]), "multilabel"), [.98, .5])
    picked = select_pseudo(np.array([[.98], [.01], [.6]]), "binary", "threshold", threshold=0.95)
    assert picked.rows.tolist() == [0, 1] and picked.targets[:, 0].tolist() == [1, 0]


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
    picked = select_pseudo(p, "multiclass", "top_fraction", fraction=0.5)
    idx, targets = picked.rows, picked.targets
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
    picked = select_pseudo(p, "multiclass", "all", soft=True)
    assert picked.rows.tolist() == list(range(12)) and np.allclose(picked.targets, p)


def test_unknown_rule_is_refused():
    with pytest.raises(PipelineError, match="pseudo.rule"):
        select_pseudo(np.eye(3), "multiclass", "best")


def test_extra_rows_sampler_takes_every_real_row_once_and_a_fresh_share_of_the_extra_rows():
    import torch

    from foldstack.data.dataset import ExtraRowsSampler

    g = torch.Generator()
    sampler = ExtraRowsSampler(n_real=20, n_extra=10, fraction=0.3, generator=g)
    epochs = []
    for seed in (0, 1, 0):
        g.manual_seed(seed)
        rows = list(sampler)
        assert len(rows) == len(sampler) == 23 and len(set(rows)) == 23
        assert sorted(r for r in rows if r < 20) == list(range(20))  # every real row, once
        assert all(20 <= r < 30 for r in rows if r >= 20)
        epochs.append(rows)
    assert epochs[0] == epochs[2] and epochs[0] != epochs[1]  # a function of the epoch seed
    assert {r for r in epochs[0] if r >= 20} != {r for r in epochs[1] if r >= 20}  # drawn afresh
    assert len(ExtraRowsSampler(5, 10, 1.0, g)) == 15


def test_a_fold_trains_on_its_part_plus_the_extra_rows_and_validates_on_real_rows_only(tmp_path):
    """Pseudo rows never reach a validation fold; distillation targets of train rows are the teacher's OOF rows."""
    from conftest import write_png
    from foldstack.config.schema import Config
    from foldstack.data.images import ImageStore
    from foldstack.engine.fold import ExtraRows, build_fold

    paths = [tmp_path / f"train_{i}.png" for i in range(12)] + [tmp_path / f"test_{i}.png" for i in range(4)]
    for i, p in enumerate(paths):
        write_png(p, (40 * (i % 3), 90, 160), i)
    store = ImageStore(paths, n_train=12)
    test_rows = store.test_rows(np.arange(4))
    y = np.eye(3, dtype=np.float32)[np.arange(12) % 3]
    folds = np.arange(12) % 2
    cfg = Config.model_validate({"model": {"name": "test_resnet"}, "data": {"img_size": 16, "batch_size": 4},
                                 "runtime": {"num_workers": 0, "device": "cpu"}})
    teacher = np.random.default_rng(0).dirichlet(np.ones(3), 12).astype(np.float32)
    test_targets = np.hstack([np.eye(3, dtype=np.float32)[[0, 1, 2, 0]], np.full((4, 3), 1 / 3, np.float32)])
    for fold in (0, 1):
        f = build_fold(cfg, store, y, folds, fold, tmp_path, ExtraRows(test_rows, test_targets, 0.5), teacher)
        train_ds, valid_ds = f.train_loader.dataset, f.valid_loader.dataset
        assert set(valid_ds.rows) == set(np.flatnonzero(folds == fold))
        assert not set(valid_ds.rows) & set(test_rows) and set(test_rows) <= set(train_ds.rows)
        real = np.flatnonzero(folds != fold)
        assert np.array_equal(train_ds.rows[:len(real)], real)
        assert np.array_equal(train_ds.targets[:len(real), 3:], teacher[real])  # the teacher's OOF rows
        assert np.array_equal(train_ds.targets[:len(real), :3], y[real])
        assert np.array_equal(valid_ds.targets, y[folds == fold])  # validation: hard labels only
        assert len(f.train_loader.batch_sampler.sampler) == len(real) + 2 and f.n_outputs == 3
