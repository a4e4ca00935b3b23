"""Folds at herbarium's scale of classes: the guard counts rows per class and fold instead of keeping an (N,) mask
per class, and the folds stage reads the class index without the (N, K) one-hot. (Seconds and peak memory at
840k rows x 15,501 classes: scripts/bench_classes.py.)"""
import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foldstack.config.competition import Competition
from foldstack.data.fold_requirements import Carriers
from foldstack.data.splits import assign_folds, metric_requirements
from foldstack.data.table import Table, class_index, encode_targets
from foldstack.errors import PipelineError

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_classes.py"


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(1, 60), st.integers(2, 6), st.integers(1, 4), st.integers(0, 10**6))
def test_counts_equal_what_masks_per_class_give(n, width, n_parts, seed):
    """Rows per fold and rows / distinct groups per class, both sides, for class indices and tag matrices:
    the same numbers the (N,) masks per class gave."""
    rng = np.random.default_rng(seed)
    parts, groups = rng.integers(0, n_parts, n), rng.integers(0, max(1, n // 3), n)
    labels = rng.integers(0, width, n)
    tags = rng.random((n, width)) < 0.4
    for carriers, masks in ((Carriers(labels, width=width), [labels == c for c in range(width)]),
                            (Carriers(multihot=tags.astype(np.float32)), list(tags.T))):
        for negative in (False, True):
            sides = [~m if negative else m for m in masks]
            assert carriers.per_part(parts, n_parts, negative).tolist() == \
                [[int((m & (parts == k)).sum()) for k in range(n_parts)] for m in sides]
            assert carriers.units(None, negative).tolist() == [int(m.sum()) for m in sides]
            assert carriers.units(groups, negative).tolist() == [len(np.unique(groups[m])) for m in sides]
        assert np.array_equal(carriers.carry_any([0, width - 1]), masks[0] | masks[-1])


def bench_classes():
    spec = importlib.util.spec_from_file_location("bench_classes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_200k_rows_of_5000_classes_split_with_one_shared_class_index(caplog):
    """The requirements of 5,000 classes share one (N,) class index: memory grows with rows plus classes x folds,
    not rows x classes (the masks took 1 GB here, 13 GB at herbarium's 840k x 15,501)."""
    labels, counts = bench_classes().long_tail(200_000, 5_000, 600, np.random.default_rng(0))
    names = [f"taxon {c}" for c in range(5_000)]
    needs = metric_requirements(labels, "multiclass", "macro_f1", names)
    assert len(needs) == 5_000 and all(r.carriers is needs[0].carriers for r in needs)
    assert needs[0].carriers.labels.nbytes == 200_000 * 8 and needs[0].carriers.multihot is None
    with caplog.at_level("INFO", logger="foldstack"):
        folds = assign_folds(200_000, 5, 42, "auto", labels, None, None, needs, names, "train_metadata.json")
    assert np.bincount(folds).tolist() == [40_000] * 5
    per_class = np.bincount(labels * 5 + folds, minlength=5_000 * 5).reshape(5_000, 5)
    frequent, rare = counts >= 5, counts < 5
    assert per_class[frequent].min() >= 1  # every class with 5+ rows in every validation fold
    assert per_class[frequent].max(1).tolist() == np.ceil(counts[frequent] / 5).astype(int).tolist()  # stratified
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rare classes")]
    unseen = int(counts[rare][(per_class[rare] > 0).sum(1) == 1].sum())  # all its rows in one fold
    assert line.startswith(f"rare classes: {int(rare.sum())} class(es) ({int(counts[rare].sum())} train rows) with "
                           f"fewer rows each than folds.n_splits=5 (train_metadata.json)")
    assert f"; {unseen} of those rows have no row of their class" in line and unseen >= 600


def test_class_index_reads_the_label_column_as_encode_targets_does():
    classes = [str(c) for c in range(30)]
    frame = pd.DataFrame({"Id": [f"i{n}" for n in range(6)], "category_id": ["3", "0", "29", "3", "7", "12"]})
    comp = Competition(task="multiclass", classes=classes, target_cols=["category_id"], id_col="Id", metric="macro_f1")
    table = Table(frame["Id"].tolist(), [], frame, "train_metadata.json")
    assert class_index(table, comp).tolist() == [3, 0, 29, 3, 7, 12] == encode_targets(table, comp).argmax(1).tolist()
    binary = Competition(task="binary", classes=["no", "yes"], target_cols=["has"], id_col="Id", metric="roc_auc")
    yes_no = Table(["a", "b", "c"], [], pd.DataFrame({"Id": ["a", "b", "c"], "has": ["yes", "no", "yes"]}), "t.csv")
    assert class_index(yes_no, binary).tolist() == [1, 0, 1] == encode_targets(yes_no, binary)[:, 0].tolist()
    frame.loc[4, "category_id"] = "30"
    with pytest.raises(PipelineError) as err:  # 30 known classes: counted, not listed
        class_index(table, comp)
    assert str(err.value) == ("train_metadata.json row 6: category_id='30' is not a known class (none of the 30 of "
                              "competition.classes)")


def test_the_classes_bench_prints_its_steps_at_a_small_size(capsys):
    bench_classes().main(["--rows", "3000", "--classes", "400", "--singletons", "50"])
    out = capsys.readouterr().out
    assert out.startswith("3,000 rows x 400 classes (50 singletons, ")
    steps = re.findall(r"^\| ([^|]+) \| ([\d.]+) \| ([\d.]+) \|$", out, re.M)
    assert [s[0].split(" (")[0] for s in steps] == [
        "import scikit-learn's splitters", "class index from the label column", "metric requirements",
        "assign_folds", "audit: per-fold class counts and coverage"]
    assert "fold sizes [600, 600, 600, 600, 600]; 0 fold/class gaps among the classes the metric needs" in out
