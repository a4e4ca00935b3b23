"""Multilabel folds at imet's scale of tags: `auto` stratifies on each row's rarest tag past iterative
stratification's size, rare tags are spread and counted where the metric allows, refused where it does not.
(Seconds, peak memory and per-tag balance at 142k rows x 3,474 tags: scripts/bench_classes.py --multilabel.)"""
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from foldstack.data import multilabel_folds
from foldstack.data.fold_requirements import Carriers
from foldstack.data.multilabel_folds import multilabel_method, rarest_tag_strata, tag_deviation
from foldstack.data.splits import assign_folds, metric_requirements, resolve_method
from foldstack.errors import PipelineError

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_classes.py"


def bench():
    spec = importlib.util.spec_from_file_location("bench_classes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_auto_picks_iterative_stratification_by_size():
    assert multilabel_method(142_119, 3_474) == "multilabel_rarest"  # imet: ~50 minutes of iterstrat
    assert multilabel_method(31_072, 28) == "multilabel_stratified"  # human-protein-atlas
    assert multilabel_method(10_000, 1_000) == "multilabel_stratified"  # 1e10 steps: seconds
    assert resolve_method("auto", "multilabel", False, False, (142_119, 3_474)) == "multilabel_rarest"
    assert resolve_method("auto", "multilabel", True, True, (142_119, 3_474)) == "group"
    assert resolve_method("multilabel_stratified", "multilabel", False, False, (142_119, 3_474)) == \
        "multilabel_stratified"


def test_rarest_tag_strata():
    y = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 1, 1], [1, 0, 0]], bool)  # rows per tag 4 3 2
    assert rarest_tag_strata(y, 1)[0].tolist() == [1, 0, 2, -2, 2, 0]
    assert rarest_tag_strata(y, 2) == (pytest.approx([-1, 0, 2, -1, 2, 0]), 2)  # strata of 1 row pooled


def tag_matrix():
    """3,000 rows x 300 long-tailed tags (about 4.5 a row), as the bench builds imet's."""
    return bench().tag_table(3_000, 300, 10, np.random.default_rng(0))


def test_rarest_tag_folds_are_balanced_per_tag(monkeypatch, caplog):
    """Every row in one fold, and each tag's fold shares near 1/5: within 0.1 on average over the tags with 5+
    rows (KFold: 0.13) and within 0.05 for every tag of 300+ rows; auto picks it past ITERATIVE_STEPS and says so."""
    y = tag_matrix()
    monkeypatch.setattr(multilabel_folds, "ITERATIVE_STEPS", 1e6)
    with caplog.at_level("INFO", logger="foldstack"):
        folds = assign_folds(3_000, 5, 42, multihot=y.astype(np.float32), source="train.csv")
    assert folds.shape == (3_000,) and np.bincount(folds).tolist() == [600] * 5
    deviation = tag_deviation(Carriers(multihot=y), folds, 5)
    kfold = tag_deviation(Carriers(multihot=y), assign_folds(3_000, 5, 42, "kfold"), 5)
    assert deviation.mean() < 0.1 < kfold.mean()
    assert tag_deviation(Carriers(multihot=y), folds, 5, 300).max() < 0.05
    line = next(r.getMessage() for r in caplog.records if "rarest tag" in r.getMessage())
    assert line.startswith("folds.method=auto: 3,000 rows x 300 tags is past iterative stratification's size "
                           "(N x K² = 2.7e+08 > 1e+06, minutes to hours): folds stratified on each row's rarest tag")
    assert f"at most {deviation.max():.3f} from 1/5 (mean {deviation.mean():.3f}) over the {len(deviation)} tags" in line
    assert np.array_equal(folds, assign_folds(3_000, 5, 42, "multilabel_rarest", multihot=y))  # same as named


def rare_fixture():
    """60 rows: 'common' on all, 'half' on 30, 'few' on 3 rows, 'one' on 1 (neither spread over 5 folds)."""
    rng = np.random.default_rng(0)
    y = np.zeros((60, 4), np.float32)
    y[:, 0] = 1
    y[rng.choice(60, 30, replace=False), 1] = 1
    y[[4, 17, 40], 2] = 1
    y[33, 3] = 1
    return y, ["common", "half", "few", "one"]


@pytest.mark.parametrize("method, how", [("auto", "by iterative stratification"),
                                         ("multilabel_rarest", "in one shared stratum")])
@pytest.mark.parametrize("metric", ["micro_f1", "f_beta", "log_loss"])
def test_rare_tags_are_spread_and_counted(method, how, metric, caplog):
    y, names = rare_fixture()
    needs = metric_requirements(y, "multilabel", metric, names)
    with caplog.at_level("INFO", logger="foldstack"):
        folds = assign_folds(60, 5, 0, method, multihot=y, requirements=needs, classes=names, source="train.csv")
    assert np.bincount(folds).tolist() == [12] * 5
    assert len(set(folds[[4, 17, 40]].tolist())) == 3  # 'few' in three folds: each row's tag seen in training
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rare tags")]
    assert line.startswith(f"rare tags: 2 tag(s) (4 train rows) with fewer rows each than folds.n_splits=5 "
                           f"(train.csv) are spread over the folds {how}, not in every validation fold; 1 of those "
                           f"rows have no row of their tag in their fold's train part")


@pytest.mark.parametrize("method", ["auto", "multilabel_rarest"])
@pytest.mark.parametrize("metric", ["roc_auc", "macro_f1"])
def test_rare_tags_still_refused_where_the_metric_needs_them(method, metric):
    y, names = rare_fixture()
    with pytest.raises(PipelineError) as err:
        assign_folds(60, 5, 0, method, multihot=y, requirements=metric_requirements(y, "multilabel", metric, names),
                     classes=names, source="train.csv")
    assert str(err.value) == (f"folds.n_splits=5: tag 'few' has only 3 train row(s) (train.csv); competition.metric "
                              f"{metric} needs it in every validation fold: lower folds.n_splits or merge/drop the "
                              f"class")


def test_rarest_tag_folds_keep_groups_whole():
    y = tag_matrix()[:600]
    groups = np.arange(600) // 3
    folds = assign_folds(600, 5, 0, "multilabel_rarest", groups=groups, multihot=y)
    assert all(len(set(folds[groups == g].tolist())) == 1 for g in range(200))
    assert np.bincount(folds).tolist() == [120] * 5  # 200 groups of 3 rows: 40 a fold


def test_the_bench_prints_the_multilabel_steps_at_a_small_size(capsys):
    bench().main(["--multilabel", "--rows", "2000", "--classes", "200", "--singletons", "5"])
    out = capsys.readouterr().out
    assert out.startswith("2,000 rows x 200 tags (")
    steps = re.findall(r"^\| ([^|]+) \| ([\d.]+) \| ([\d.]+) \|$", out, re.M)
    assert [s[0].split(" (")[0] for s in steps] == [
        "import scikit-learn's splitters", "float32 targets from the tag column", "metric requirements",
        "assign_folds"]
    sizes = re.search(r"^fold sizes \[([\d, ]+)\]; how far a tag's fold share is from 1/5", out, re.M).group(1)
    assert sum(map(int, sizes.split(", "))) == 2_000  # iterative stratification: sizes within a few rows
    deviations = re.findall(r"^  tags of (\d+)\+ rows \(([\d,]+)\): ([\d.]+), ([\d.]+)$", out, re.M)
    assert [d[0] for d in deviations] == ["5", "20", "100"] and deviations[0][1] == "184"
