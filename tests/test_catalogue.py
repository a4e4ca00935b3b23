"""The bad-input catalogue: each case either stops with one `error:` line naming the file/row/key, exit code 1
and nothing written or changed, or (where the input is valid but unusual) gives the right result.

Image files (zero-byte, random bytes, truncated, odd formats) are in test_image_formats.py; fold splits that
cannot work in test_folds_guards.py; kills and full disks in test_faults.py. The refused commands run in this
process (run_here): test_errors.py holds a real process's stderr to the same contract."""
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from foldstack.config.competition import Competition
from foldstack.config.levels import Stack
from foldstack.stacking.thresholds import read_thresholds, write_thresholds
from foldstack.submission import build_submission, validate_submission

from conftest import TINY, make_competition, make_project, run_here, run_make

ARTIFACTS = ("folds", "models", "oof", "stacks", "pseudo", "submissions", "cache", "lr_find")


def tree(root):
    """Every file outside input/ with its size and mtime: what a refused command must leave as it was."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and "input" not in p.relative_to(root).parts[:1]}


def refused(proc, root, before, *fragments):
    """One `error:` line holding every fragment, exit 1, no traceback, and the project tree unchanged."""
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("error:")]
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert tree(root) == before
    return lines[0]


@pytest.fixture
def inferred(tmp_path):
    """A 3-class competition whose config was inferred (configs/c.yaml), nothing else built."""
    folder = make_competition(tmp_path, "c")
    run_here(tmp_path, "01_folds.py", "c")
    for d in ARTIFACTS:
        shutil.rmtree(tmp_path / d, ignore_errors=True)
    return tmp_path, folder


def edit_csv(path, change):
    """Rewrite a CSV through `change(frame)`: it edits the frame in place or returns a new one."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    new = change(frame)
    (frame if new is None else new).to_csv(path, index=False)


# --- the tables -------------------------------------------------------------------------------------------------

def test_missing_sample_submission_after_inference(inferred):
    root, folder = inferred
    (folder / "sample_submission.csv").unlink()
    refused(run_here(root, "01_folds.py", "c", check=False), root, tree(root),
            "missing sample submission", "sample_submission.csv")


def test_missing_id_column(inferred):
    root, folder = inferred
    edit_csv(folder / "train.csv", lambda f: f.rename(columns={"id": "image"}))
    refused(run_here(root, "01_folds.py", "c", check=False), root, tree(root),
            "train.csv", "missing column(s) 'id'")


@pytest.mark.parametrize("csv_name", ["train.csv", "sample_submission.csv"])
def test_duplicate_ids(inferred, csv_name):
    root, folder = inferred
    edit_csv(folder / csv_name, lambda f: f.loc.__setitem__((5, "id"), f.loc[2, "id"]))
    refused(run_here(root, "01_folds.py", "c", check=False), root, tree(root),
            f"{csv_name} row 7", "duplicate id")


@pytest.mark.parametrize("csv_name", ["train.csv", "sample_submission.csv"])
def test_header_only_csv_at_inference(tmp_path, csv_name):
    folder = make_competition(tmp_path, "c")
    edit_csv(folder / csv_name, lambda f: f.iloc[:0])
    proc = run_here(tmp_path, "01_folds.py", "c", check=False)
    refused(proc, tmp_path, {}, csv_name, "header only, no rows")


@pytest.mark.parametrize("csv_name", ["train.csv", "sample_submission.csv"])
def test_header_only_csv_after_inference(inferred, csv_name):
    root, folder = inferred
    edit_csv(folder / csv_name, lambda f: f.iloc[:0])
    refused(run_here(root, "01_folds.py", "c", check=False), root, tree(root), csv_name, "no rows")


def test_empty_labels_are_refused_at_inference_naming_the_rows(tmp_path):
    folder = make_competition(tmp_path, "b", "binary")
    edit_csv(folder / "train.csv", lambda f: f.loc.__setitem__(([3, 7], "has_thing"), ["", " "]))
    line = refused(run_here(tmp_path, "01_folds.py", "b", check=False), tmp_path, {},
                   "train.csv rows 5, 9", "empty has_thing", "competition.drop_unlabeled=true")
    assert not (tmp_path / "configs" / "b.yaml").exists(), line


def test_empty_labels_dropped_on_opt_in_say_how_many(tmp_path):
    folder = make_competition(tmp_path, "b", "binary", n_train=24)
    edit_csv(folder / "train.csv", lambda f: f.loc.__setitem__(([3, 7], "has_thing"), ["", ""]))
    proc = run_here(tmp_path, "01_folds.py", "b", "competition.drop_unlabeled=true")
    comp = yaml.safe_load((tmp_path / "configs" / "b.yaml").read_text())["competition"]
    assert comp["task"] == "binary" and comp["classes"] == ["0", "1"]
    assert comp["drop_unlabeled"] is True  # written: later runs need no override
    assert "left out 2 train rows with an empty target" in proc.stderr
    [folds_csv] = (tmp_path / "folds").rglob("folds.csv")
    ids = pd.read_csv(folds_csv)["id"].tolist()
    assert len(ids) == 22 and "train_003" not in ids and "train_007" not in ids


def test_empty_label_after_inference_names_the_row(inferred):
    root, folder = inferred
    edit_csv(folder / "train.csv", lambda f: f.loc.__setitem__((10, "label"), ""))
    refused(run_here(root, "01_folds.py", "c", check=False), root, tree(root), "train.csv row 12", "empty label")


def test_absolute_path_id(inferred):
    root, folder = inferred
    edit_csv(folder / "train.csv", lambda f: f.loc.__setitem__((1, "id"), str(folder / "test" / "test_000")))
    refused(run_here(root, "01_folds.py", "c", check=False), root, tree(root), "train.csv row 3", "points outside")


def test_test_image_listed_in_the_sample_but_missing_stops_the_first_stage(inferred):
    root, folder = inferred
    (folder / "test" / "test_003.png").unlink()
    refused(run_here(root, "01_folds.py", "c", check=False), root, tree(root),
            "sample_submission.csv row 5", "image not found", "test_003.png")


def test_several_sample_submissions(tmp_path):
    folder = make_competition(tmp_path, "c")
    (folder / "sample_submission.csv").rename(folder / "sample_submission_a.csv")
    (folder / "sample_submission_b.csv").write_text((folder / "sample_submission_a.csv").read_text())
    refused(run_here(tmp_path, "01_folds.py", "c", check=False), tmp_path, {},
            "several sample submission files", "sample_submission_a.csv, sample_submission_b.csv")
    # the exact Kaggle name among others is the one: said in the written config
    (folder / "sample_submission_a.csv").rename(folder / "sample_submission.csv")
    run_here(tmp_path, "01_folds.py", "c")
    assert "sample_submission: sample_submission.csv" in (tmp_path / "configs" / "c.yaml").read_text()


def test_sample_columns_changed_after_inference_stop_the_first_stage(inferred):
    root, folder = inferred
    edit_csv(folder / "sample_submission.csv", lambda f: f.rename(columns={"label": "prediction"}))
    refused(run_here(root, "01_folds.py", "c", check=False), root, tree(root),
            "sample_submission.csv: columns ['id', 'prediction'] differ", "competition.submission_columns")


# --- the config -------------------------------------------------------------------------------------------------

def test_malformed_yaml(inferred):
    root, _ = inferred
    (root / "configs" / "exp" / "bad.yaml").parent.mkdir(exist_ok=True)
    (root / "configs" / "exp" / "bad.yaml").write_text("train:\n  epochs: [1, 2\n")
    refused(run_here(root, "01_folds.py", "c", extra=["--exp", "bad"], check=False), root, tree(root),
            "bad.yaml: invalid YAML at line")


def test_unknown_key_in_a_config_file(inferred):
    root, _ = inferred
    with open(root / "configs" / "c.yaml", "a") as f:
        f.write("folds:\n  n_split: 3\n")
    refused(run_here(root, "01_folds.py", "c", check=False), root, tree(root),
            "configs/c.yaml: folds.n_split: unknown key")


def test_wrong_type(inferred):
    root, _ = inferred
    refused(run_here(root, "01_folds.py", "c", "folds.n_splits=three", check=False), root, tree(root),
            "overrides: folds.n_splits", "'three'")


def test_crop_fraction_that_rounds_to_the_image_size_stops_before_training(inferred):
    root, _ = inferred
    proc = run_here(root, "01_folds.py", "c", "data.img_size=32", "predict.tta=[five_crop]",
                      "predict.tta_crop_fraction=0.99", check=False)
    refused(proc, root, tree(root), "predict.tta_crop_fraction=0.99 at data.img_size=32")


def test_overrides_with_spaces_reach_the_scripts_whole(tmp_path):
    root = make_project(tmp_path / "p")
    make_competition(root, "c")
    proc = run_make(root, "folds", COMP="c", OVERRIDES="predict.tta=[hflip, vflip] folds.n_splits=3")
    [manifest] = (root / "folds").rglob("manifest.json")
    assert json.loads(manifest.read_text())["config"]["folds"]["n_splits"] == 3, proc.stderr


# --- scoring ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("problem", ["no target column", "duplicate id"])
def test_score_refuses_a_bad_labels_file(inferred, problem):
    root, folder = inferred
    sample = pd.read_csv(folder / "sample_submission.csv", dtype=str)
    sample.to_csv(root / "submission.csv", index=False)
    labels = pd.read_csv(folder / "test_labels.csv", dtype=str)
    if problem == "no target column":
        labels = labels.drop(columns="label")
    else:
        labels.loc[4, "id"] = labels.loc[1, "id"]
    labels.to_csv(root / "labels.csv", index=False)
    proc = run_here(root, "score.py", "c", extra=["--labels", "labels.csv"], check=False)
    refused(proc, root, tree(root), "labels.csv",
            "missing column(s) 'label'" if problem == "no target column" else "row 6: duplicate id")


# --- unusual but valid: the right result --------------------------------------------------------------------------

def test_thresholds_come_back_in_class_order(tmp_path):
    """Numeric tags sort 1 < 2 < 10; a JSON object's keys sort '1' < '10' < '2'."""
    names, values = ["1", "2", "10"], [0.1, 0.5, 0.9]
    write_thresholds(tmp_path, names, values)
    assert read_thresholds(tmp_path, names).tolist() == values
    (tmp_path / "thresholds.json").write_text(json.dumps(dict(zip(names, values)), sort_keys=True))  # older file
    assert read_thresholds(tmp_path, names).tolist() == values
    with pytest.raises(Exception, match=r"thresholds for classes \['1', '10', '2'\], but the predictions have"):
        read_thresholds(tmp_path, ["1", "2", "3"])


@pytest.mark.slow  # the whole pipeline, in this process
def test_numeric_multilabel_tags_get_their_own_thresholds(tmp_path):
    make_competition(tmp_path, "t", "tags", classes=("2", "10", "1"), n_train=32)
    settings = [*TINY, "train.epochs=2", "predict.tta=[]"]
    for script in ("01_folds.py", "02_train.py", "03_predict.py", "05_stack.py", "06_submit.py"):
        run_here(tmp_path, script, "t", *settings)
    [stack] = [p.parent for p in (tmp_path / "stacks").rglob("manifest.json")]
    stored = json.loads((stack / "thresholds.json").read_text())
    assert stored["classes"] == ["1", "2", "10"]  # competition.classes order, not sorted as strings
    comp = Competition(**yaml.safe_load((tmp_path / "configs" / "t.yaml").read_text())["competition"])
    sample = pd.read_csv(tmp_path / "input" / "t" / "sample_submission.csv", dtype=str)
    test = np.load(stack / "test.npy")
    expected = build_submission(comp, sample["id"].tolist(), test, np.array(stored["thresholds"]))
    sub = pd.read_csv(tmp_path / "submission.csv", dtype=str, keep_default_na=False)
    assert sub.equals(expected.astype(str))
    assert Stack().search_thresholds


@pytest.mark.slow  # the whole pipeline, in this process
def test_classes_named_id_and_fold_and_unicode_ids_with_spaces(tmp_path):
    """A class may be called `id` or `fold` (the prediction CSVs have those columns too), and ids may hold
    spaces and any unicode: the pipeline runs to a valid submission with the right ids and rows."""
    folder = make_competition(tmp_path, "u", "label", classes=("id", "fold", "sea turtle"), n_train=24)
    for split, csv_name in (("train", "train.csv"), ("test", "sample_submission.csv")):
        frame = pd.read_csv(folder / csv_name, dtype=str)
        new_ids = [f"ünï cödé {i} 画像" for i in range(len(frame))]
        for old, new in zip(frame["id"], new_ids):
            os.rename(folder / split / f"{old}.png", folder / split / f"{new}.png")
        frame["id"] = new_ids
        frame.to_csv(folder / csv_name, index=False)
    (folder / "test" / "extra image not in the sample.png").write_bytes((folder / "test" / f"{new_ids[0]}.png")
                                                                       .read_bytes())
    for script in ("01_folds.py", "02_train.py", "03_predict.py", "05_stack.py", "06_submit.py"):
        run_here(tmp_path, script, "u", *TINY, "predict.tta=[]")
    comp = Competition(**yaml.safe_load((tmp_path / "configs" / "u.yaml").read_text())["competition"])
    assert comp.classes == ["fold", "id", "sea turtle"]
    sample = pd.read_csv(folder / "sample_submission.csv", dtype=str)
    sub = pd.read_csv(tmp_path / "submission.csv", dtype=str, keep_default_na=False)
    validate_submission(sub, sample, comp)  # same ids, same order, known classes: the extra image is ignored
    [oof] = [p.parent for p in (tmp_path / "oof").rglob("manifest.json")]
    assert np.load(oof / "test.npy").shape == (len(sample), 3)
    oof_csv = pd.read_csv(oof / "oof.csv", dtype=str)
    assert list(oof_csv.columns) == ["id", "fold", "fold.1", "id.1", "sea turtle"]  # pandas renames the repeats
    assert oof_csv["id"].tolist() == pd.read_csv(folder / "train.csv", dtype=str)["id"].tolist()


# --- the training step ---------------------------------------------------------------------------------------------

def test_lr_find_runs_the_training_step_with_accumulation_and_multiscale(tmp_path, monkeypatch):
    from foldstack.engine import step
    from foldstack.cli import run_stage
    from foldstack.stages import lr_find

    make_competition(tmp_path, "c", n_train=40)
    settings = [*TINY, "train.accum_steps=2", "data.multiscale=[24, 40]", "lr_find.steps=6", "data.batch_size=4"]
    run_here(tmp_path, "01_folds.py", "c", *settings)
    steps, sizes = [], []
    real_step, real_resize = step.micro_step, step.resize_batch
    monkeypatch.setattr(step, "micro_step", lambda *a, **k: steps.append((a[4], k["sync"])) or real_step(*a, **k))
    monkeypatch.setattr(step, "resize_batch", lambda x, s: sizes.append(s) or real_resize(x, s))
    run_stage(lr_find.run, "", argv=["--root", str(tmp_path), "--comp", "c", "--set", *settings])
    manifest = json.loads(next((tmp_path / "lr_find").rglob("manifest.json")).read_text())
    updates = manifest["metrics"]["steps_run"]
    # every update is two micro-batches (the first without a gradient sync), batches numbered as in an epoch
    assert steps == [(i, i % 2 == 1) for i in range(2 * updates)] and updates >= 2
    assert set(sizes) <= {24, 40} and len(sizes) == len(steps)


def test_diverged_training_stops_with_the_reason(tmp_path):
    make_competition(tmp_path, "c")
    run_here(tmp_path, "01_folds.py", "c", *TINY)
    proc = run_here(tmp_path, "02_train.py", "c", *TINY, "train.lr=1e30", "train.optimizer=sgd", check=False)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "fold 0 epoch 1: validation accuracy" in lines[0] and "diverged" in lines[0]
    assert not list((tmp_path / "models").rglob("manifest.json"))
