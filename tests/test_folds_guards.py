"""Folds that can't lie: a split that would leave a validation fold without a class the metric (or the
stratification) needs is refused with one line naming the key, the class and the fold; multilabel folds are
iteratively stratified; folds.dedupe keeps byte-identical images in one fold."""
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foldstack.config.competition import Folds
from foldstack.config.loading import sections
from foldstack.config.schema import Config
from foldstack.context import load_config
from foldstack.data.splits import assign_folds, metric_requirements
from foldstack.errors import PipelineError
from foldstack.utils.io import stable_hash

from conftest import make_competition, run_here


def one_error_line(proc) -> str:
    """The run failed with exit 1 and exactly one `error:` line, no traceback: that line."""
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def competition(root, kind, n_train=24, **columns):
    """A tiny competition whose config is inferred first, then train.csv rewritten with `columns` (lists)."""
    folder = make_competition(root, "c", kind, n_train=n_train, n_test=4)
    load_config(root, "c", "baseline", [])  # infer configs/c.yaml from the untouched folder
    frame = pd.read_csv(folder / "train.csv", dtype=str)
    for name, values in columns.items():
        frame[name] = values
    frame.to_csv(folder / "train.csv", index=False)
    return folder


def test_class_with_fewer_rows_than_folds_is_spread_not_refused(tmp_path):
    labels = ["cat", "dog"] * 9 + ["sea turtle"] * 3 + ["cat"] * 3
    competition(tmp_path, "label", label=labels)
    proc = run_here(tmp_path, "01_folds.py", "c", "folds.n_splits=5")
    assert ("rare classes: 1 class(es) (3 train rows) with fewer rows each than folds.n_splits=5 (" in proc.stderr
            and "are spread over the folds in one shared stratum" in proc.stderr), proc.stderr
    assert "3 of those rows have no row of their class in their fold's train part" not in proc.stderr
    [folds] = (tmp_path / "folds" / "c").glob("*/folds.csv")
    turtles = pd.read_csv(folds)["fold"][18:21]
    assert turtles.nunique() == 3  # three turtles, three folds: each turtle has two in its train part
    assert "0 of those rows have no row of their class" in proc.stderr
    proc = run_here(tmp_path, "01_folds.py", "c", "folds.n_splits=5", "competition.metric=roc_auc", check=False)
    line = one_error_line(proc)  # ROC AUC (one-vs-rest) is undefined without the class: still refused
    assert line.startswith("error: folds.n_splits=5: class 'sea turtle' has only 3 train row(s) (")
    assert "competition.metric roc_auc needs it in every validation fold: lower folds.n_splits" in line


def rare_fixture():
    """3 frequent classes (30 rows each) and 40 singleton classes, shuffled."""
    labels = np.array([c for c in range(3) for _ in range(30)] + list(range(3, 43)))
    return labels[np.random.default_rng(0).permutation(len(labels))]


def test_singleton_classes_are_spread_over_the_folds_and_counted(caplog):
    labels = rare_fixture()
    names = [f"c{c}" for c in range(43)]
    needs = metric_requirements(np.eye(43, dtype=np.float32)[labels], "multiclass", "macro_f1", names)
    with caplog.at_level("INFO", logger="foldstack"):
        folds = assign_folds(len(labels), 5, 0, labels=labels, requirements=needs, classes=names)
    assert folds.shape == (130,) and sorted(set(folds.tolist())) == [0, 1, 2, 3, 4]  # every row in one fold
    for c in range(3):  # each frequent class in every validation fold, stratified (30 rows: 6 a fold)
        assert np.bincount(folds[labels == c], minlength=5).tolist() == [6] * 5
    singles = np.bincount(folds[labels >= 3], minlength=5)
    assert singles.sum() == 40 and singles.max() <= 8 + 1, singles
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rare classes")]
    assert line.startswith("rare classes: 40 class(es) (40 train rows) with fewer rows each than folds.n_splits=5 "
                           "(train rows) are spread over the folds in one shared stratum")
    assert "; 40 of those rows have no row of their class in their fold's train part" in line


def test_rare_pairs_count_only_the_rows_left_without_a_train_twin(caplog):
    labels = np.array([0] * 20 + [1] * 20 + [2, 2, 3, 3, 4])  # two pairs and a single, 5 folds
    with caplog.at_level("INFO", logger="foldstack"):
        folds = assign_folds(len(labels), 5, 3, labels=labels)
    assert sorted(folds[40:].tolist()) == [0, 1, 2, 3, 4]  # the pool of 5 rare rows: one a fold
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rare classes")]
    # each pair's rows sit in two folds, so each has its twin in train: only the single is unpredictable
    assert "rare classes: 3 class(es) (5 train rows)" in line and "; 1 of those rows have no row" in line


def test_rare_classes_still_refused_where_the_metric_is_undefined():
    labels = rare_fixture()
    y = np.eye(43, dtype=np.float32)[labels]
    needs = metric_requirements(y, "multiclass", "roc_auc", [f"c{c}" for c in range(43)])
    with pytest.raises(PipelineError, match=r"class 'c\d+' has only 1 train row\(s\) .*roc_auc needs it"):
        assign_folds(len(labels), 5, 0, labels=labels, requirements=needs)
    binary = np.array([1] * 3 + [0] * 40)  # a one-sided ROC AUC column in two folds of five
    needs = metric_requirements(binary[:, None].astype(np.float32), "binary", "roc_auc", ["0", "1"])
    with pytest.raises(PipelineError, match=r"folds.n_splits=5: class '1' has only 3 train row\(s\)"):
        assign_folds(len(binary), 5, 0, labels=binary, requirements=needs)


def test_fewer_groups_than_folds_is_one_line(tmp_path):
    competition(tmp_path, "label", site=["a", "b", "c"] * 8)
    proc = run_here(tmp_path, "01_folds.py", "c", "folds.n_splits=4", "competition.group_col=site", check=False)
    line = one_error_line(proc)
    assert line.startswith("error: folds.n_splits=4: only 3 groups of competition.group_col 'site' (")
    assert line.endswith("train.csv); every fold needs at least one: lower folds.n_splits")
    assert not (tmp_path / "folds").exists()


def test_class_in_fewer_groups_than_folds_is_spread(tmp_path):
    """StratifiedGroupKFold can put a class in at most as many folds as it has groups: with 2 groups and 3 folds
    the class is rare (pooled, logged); under ROC AUC it is refused."""
    labels = ["cat", "dog", "sea turtle"] * 8
    sites = [f"t{i % 2}" if i % 3 == 2 else f"s{i}" for i in range(24)]  # the 8 sea turtles: 2 sites
    competition(tmp_path, "label", label=labels, site=sites)
    group = ["folds.n_splits=3", "competition.group_col=site"]
    proc = run_here(tmp_path, "01_folds.py", "c", *group)
    assert ("rare classes: 1 class(es) (8 train rows) with fewer groups of competition.group_col 'site' each than "
            "folds.n_splits=3") in proc.stderr, proc.stderr
    proc = run_here(tmp_path, "01_folds.py", "c", *group, "competition.metric=roc_auc", check=False)
    line = one_error_line(proc)
    assert ("folds.n_splits=3: class 'sea turtle' is in only 2 of the groups of competition.group_col 'site'"
            in line) and "competition.metric roc_auc needs it in every validation fold" in line


# Binary ROC AUC with a group column: 3 positive rows, each its own site, 3 folds. GroupKFold balances fold sizes,
# not classes: for most seeds two positive sites share a fold and another fold has no positive (AUC = NaN).
BINARY_SITES = ["p0", "p1", "p2"] + [f"n{i // 3}" for i in range(21)]
BINARY_LABELS = ["1"] * 3 + ["0"] * 21


def gap_seed():
    """(seed, first fold without a positive) of the plain GroupKFold split the stage would make."""
    from sklearn.model_selection import GroupKFold

    y, groups = np.array(BINARY_LABELS, int), np.array(BINARY_SITES, dtype=object)
    for seed in range(50):
        folds = np.zeros(len(y), int)
        for k, (_, valid) in enumerate(GroupKFold(3, shuffle=True, random_state=seed).split(y, y, groups)):
            folds[valid] = k
        missing = [k for k in range(3) if not y[folds == k].any()]
        if missing:
            return seed, missing[0]
    raise AssertionError("no seed leaves a fold without positives")


def test_validation_fold_without_positives_is_refused_for_roc_auc(tmp_path):
    seed, fold = gap_seed()
    competition(tmp_path, "binary", has_thing=BINARY_LABELS, site=BINARY_SITES)
    group = ["folds.n_splits=3", f"folds.seed={seed}", "competition.group_col=site"]
    proc = run_here(tmp_path, "01_folds.py", "c", *group, "folds.method=group", check=False)
    line = one_error_line(proc)
    assert line.startswith(f"error: folds.n_splits=3 (group, seed {seed}): validation fold {fold} has no train row "
                           f"of class '1' (")
    assert "competition.metric roc_auc needs it in every validation fold: change folds.seed" in line
    assert not (tmp_path / "folds").exists()
    run_here(tmp_path, "01_folds.py", "c", *group)  # auto: StratifiedGroupKFold spreads the positive sites
    [folds] = (tmp_path / "folds" / "c").glob("*/folds.csv")
    assert sorted(pd.read_csv(folds)["fold"][:3]) == [0, 1, 2]


def test_multilabel_roc_auc_tag_with_fewer_positives_than_folds(tmp_path):
    tags = ["cat"] * 10 + ["cat dog"] * 8 + ["dog sea turtle"] * 2 + ["dog turtle"] * 4  # classes cat dog sea turtle
    competition(tmp_path, "tags", tags=tags)
    proc = run_here(tmp_path, "01_folds.py", "c", "competition.metric=roc_auc", "folds.n_splits=3", check=False)
    line = one_error_line(proc)
    assert line.startswith("error: folds.n_splits=3: tag 'sea' has only 2 train row(s) (")
    assert "competition.metric roc_auc needs it in every validation fold" in line
    assert not (tmp_path / "folds").exists()
    run_here(tmp_path, "01_folds.py", "c", "folds.n_splits=3")  # micro_f1 (inferred) needs no tag everywhere
    [folds] = (tmp_path / "folds" / "c").glob("*/folds.csv")
    assert len(pd.read_csv(folds)) == 24


def test_metric_requirements_by_metric_and_task():
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    assert [r.what for r in metric_requirements(y, "multiclass", "roc_auc", ["a", "b", "c"])] == \
        ["class 'a'", "class 'b'", "class 'c'"]
    assert metric_requirements(y, "multiclass", "accuracy", ["a", "b", "c"]) == []
    assert [r.what for r in metric_requirements(y[:, :1], "binary", "f_beta", ["n", "p"])] == ["class 'p'"]
    tags = metric_requirements(y, "multilabel", "roc_auc", ["a", "b", "c"])
    assert [(r.what, r.negative) for r in tags][:4] == [("tag 'a'", False), ("tag 'b'", False), ("tag 'c'", False),
                                                        ("tag 'a'", True)]


# ---------------------------------------------------------------- multilabel: iterative stratification

def rare_tags(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.zeros((n, 4), np.int64)
    y[:, 0] = 1
    y[rng.choice(n, 30, replace=False), 1] = 1
    y[rng.choice(n, 5, replace=False), 2] = 1   # as many positives as folds
    y[rng.choice(n, 7, replace=False), 3] = 1
    return y


def test_multilabel_auto_is_iterative_stratification_and_keeps_rare_tags_in_every_fold():
    y = rare_tags()
    folds = assign_folds(len(y), 5, seed=0, multihot=y)
    assert np.bincount(folds).tolist() == [12] * 5
    assert [int(y[folds == k, 2].sum()) for k in range(5)] == [1] * 5
    kfold = assign_folds(len(y), 5, seed=0, method="kfold")  # what multilabel got before
    assert any(y[kfold == k, 2].sum() == 0 for k in range(5))  # KFold loses the rare tag from a fold
    assert np.array_equal(folds, assign_folds(len(y), 5, seed=0, method="multilabel_stratified", multihot=y))
    assert not np.array_equal(folds, assign_folds(len(y), 5, seed=1, multihot=y))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(6, 80), st.integers(2, 6), st.integers(2, 5), st.integers(0, 10**6),
       st.sampled_from(["micro_f1", "macro_f1", "roc_auc"]))
def test_multilabel_folds_never_lie(n, n_tags, n_splits, seed, metric):
    """Any tag matrix: every row in exactly one fold, and under a metric that needs every tag in every
    validation fold, either the folds hold them all or the split is refused naming the fold and the tag.
    (Iterative stratification alone does not promise it: with few rows and overlapping tags a tag with
    n_splits positives can still miss a fold, e.g. n=10, 6 tags, 3 folds.)"""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, n_tags)) < rng.uniform(0.02, 0.6, n_tags)).astype(np.int64)
    names = [f"t{j}" for j in range(n_tags)]
    needs = metric_requirements(y, "multilabel", metric, names)
    try:
        folds = assign_folds(n, n_splits, seed, multihot=y, requirements=needs)
    except PipelineError as e:
        assert metric != "micro_f1" and "\n" not in str(e)
        assert re.search(r"(validation fold \d has (no train row of )?tag 't\d'|tag 't\d' (has only|is absent "
                         r"from only) \d+ train row)", str(e)), str(e)
        return
    assert folds.shape == (n,) and set(folds.tolist()) <= set(range(n_splits))
    assert np.bincount(folds, minlength=n_splits).min() > 0
    for j in range(n_tags):
        sides = {"micro_f1": [], "macro_f1": [1], "roc_auc": [0, 1]}[metric]
        assert all((y[folds == k, j] == v).any() for k in range(n_splits) for v in sides), (j, metric)


def test_rare_tags_reach_every_fold_on_realistic_data():
    """40 seeded 200-row matrices with tags down to 2% prevalence: every tag with at least n_splits positives
    is in every validation fold (KFold loses some)."""
    kfold_losses = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        y = (rng.random((200, 8)) < np.array([0.5, 0.3, 0.1, 0.05, 0.04, 0.03, 0.025, 0.02])).astype(np.int64)
        for method in ("multilabel_stratified", "kfold"):
            folds = assign_folds(200, 5, seed, method, multihot=y)
            lost = [j for j in range(8) if y[:, j].sum() >= 5 and any(not y[folds == k, j].any() for k in range(5))]
            if method == "kfold":
                kfold_losses += bool(lost)
            else:
                assert not lost, (seed, lost)
    assert kfold_losses >= 10


def test_multilabel_with_groups_keeps_groups_whole():
    y = rare_tags()
    groups = np.arange(60) // 2  # pairs
    for method in ("auto", "multilabel_stratified"):  # auto with groups: GroupKFold; explicit: groups as units
        folds = assign_folds(60, 3, 0, method, groups=groups, multihot=y)
        assert all(len(set(folds[groups == g])) == 1 for g in np.unique(groups)), method
    with pytest.raises(PipelineError, match="multilabel_stratified needs a multilabel task"):
        assign_folds(60, 3, 0, "multilabel_stratified", labels=y[:, 1])


def test_the_folds_key_holds_the_artifact_format(tmp_path, monkeypatch):
    """Every key hashes the folds' key, so a new artifact format gives every artifact a new folder."""
    from foldstack import lineage
    from foldstack.artifacts import FORMAT
    from foldstack.context import Context

    for kind in ("tags", "label"):
        make_competition(tmp_path, kind, kind, n_train=12, n_test=4)
        ctx = Context(tmp_path, kind, "baseline", load_config(tmp_path, kind, "baseline", []))
        parts = {**sections(ctx.cfg, ["competition", "folds"]), "train": ctx.train.fingerprint()}
        assert lineage.folds_dir(ctx).name == stable_hash({**parts, "format": FORMAT})
        monkeypatch.setattr(lineage, "FORMAT", FORMAT + 1)
        assert lineage.folds_dir(ctx).name == stable_hash({**parts, "format": FORMAT + 1})
        monkeypatch.undo()


# ---------------------------------------------------------------- dedupe

def test_dedupe_is_in_the_hash():
    assert Folds().model_dump()["dedupe"] is False and Folds(dedupe=True).model_dump()["dedupe"] is True
    assert Config().folds.model_dump() == {"n_splits": 5, "seed": 42, "method": "auto", "dedupe": False}


def test_dedupe_keeps_identical_images_in_one_fold(tmp_path):
    folder = competition(tmp_path, "label", n_train=30)
    twins = ["train_000", "train_003", "train_006", "train_009", "train_012"]  # all class cat (i % 3 == 0)
    for name in twins[1:]:
        shutil.copyfile(folder / "train" / f"{twins[0]}.png", folder / "train" / f"{name}.png")
    base = ["folds.n_splits=5"]

    def folds_of(*extra):
        run_here(tmp_path, "01_folds.py", "c", *base, *extra)
        [path] = [p for p in (tmp_path / "folds" / "c").iterdir() if p.name not in seen]
        seen.add(path.name)
        frame = pd.read_csv(path / "folds.csv").set_index("id")["fold"]
        return frame, path

    seen = set()
    plain, plain_dir = folds_of()
    deduped, dedupe_dir = folds_of("folds.dedupe=true")
    assert len(set(plain[twins])) > 1  # without dedupe the copies straddle folds
    assert len(set(deduped[twins])) == 1 and deduped.index.tolist() == plain.index.tolist()
    manifest = json.loads((dedupe_dir / "manifest.json").read_text())
    assert manifest["metrics"]["method"] == "stratified_group"
    assert manifest["metrics"]["dedupe"]["duplicate_sets"] == 1 and manifest["metrics"]["dedupe"]["duplicate_rows"] == 5
    assert json.loads((plain_dir / "manifest.json").read_text())["metrics"]["method"] == "stratified"
    assert (tmp_path / "cache" / "c" / "file_hashes.json").is_file()  # hashed once, then from the cache
    proc = run_here(tmp_path, "01_folds.py", "c", *base, "folds.dedupe=true", "folds.method=stratified",
                      check=False)
    assert one_error_line(proc) == ("error: folds.dedupe=true with folds.method=stratified: stratified ignores "
                                    "groups, so the 5 byte-identical train images could straddle folds; use "
                                    "folds.method=auto (or a group-aware method)")
    assert sorted(p.name for p in (tmp_path / "folds" / "c").iterdir()) == sorted(seen)


def test_dedupe_groups_join_the_group_column():
    from foldstack.audit.duplicates import union_groups

    hashes = ["a", "b", "a", "c", "d", "e"]
    sites = ["s1", "s2", "s3", "s3", "s4", "s2"]
    # rows 0-2 share a hash, 2-3 a site, 1-5 a site: {0, 2, 3}, {1, 5}, {4}
    assert union_groups(6, sites, hashes).tolist() == [0, 1, 0, 0, 2, 1]
