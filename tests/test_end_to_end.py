"""The real Make targets and scripts as subprocesses on tiny generated competitions (cleanRL style)."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from foldstack.config.competition import Competition
from foldstack.submission import validate_submission

from conftest import (TINY, copy_project, make_competition, run_here, run_make, run_script,
                      train_killed_and_resumed)

OVERRIDES = " ".join(TINY)


def complete(root, stage_dir):
    return sorted(p.parent for p in (root / stage_dir).rglob("manifest.json"))


@pytest.fixture(scope="module")
def trained(tiny_trained, tmp_path_factory):
    """The session's tiny project (3-class competition c: folds, train, oof, stack) submitted: the tests below
    build on it in turn."""
    root = copy_project(tiny_trained, tmp_path_factory.mktemp("e2e") / "project")
    run_here(root, "06_submit.py", "c", *TINY)
    return (root,)


def test_fold_zero_only_then_the_rest(project):
    make_competition(project, "c", "label")
    first = run_make(project, "folds", "train", FOLD=0, COMP="c", OVERRIDES=OVERRIDES)
    assert [p.name for p in complete(project, "models")] == ["fold0"]
    assert "training fold 0" in first.stderr and "fold 1" not in first.stderr
    rest = run_make(project, "train", COMP="c", OVERRIDES=OVERRIDES)
    assert "training fold 1" in rest.stderr and "training fold 0" not in rest.stderr
    assert [p.name for p in complete(project, "models")] == ["fold0", "fold1"]
    fold_dir = complete(project, "models")[0]
    assert {"last.pt", "best.pt", "log.csv", "curves.png"} <= {p.name for p in fold_dir.iterdir()}


def test_oof_covers_every_train_row_once(trained):
    root = trained[0]
    [oof_dir] = complete(root, "oof")
    oof = pd.read_csv(oof_dir / "oof.csv")  # the CSV copy beside oof.npy
    train = pd.read_csv(root / "input" / "c" / "train.csv")
    assert sorted(oof["id"]) == sorted(train["id"]) and oof["id"].is_unique
    assert set(oof["fold"]) == {0, 1}
    probs = oof[["cat", "dog", "sea turtle"]].to_numpy()
    assert ((probs.sum(1) - 1).__abs__() < 1e-5).all()
    manifest = json.loads((oof_dir / "manifest.json").read_text())
    [folds_dir] = complete(root, "folds")
    assert manifest["fold_key"] == folds_dir.name and "accuracy" in manifest["metrics"]


def test_submission_is_valid_and_scorable(trained):
    root = trained[0]
    sub = pd.read_csv(root / "submission.csv", dtype=str, keep_default_na=False)
    sample = pd.read_csv(root / "input" / "c" / "sample_submission.csv", dtype=str)
    comp = Competition(task="multiclass", classes=["cat", "dog", "sea turtle"], submission_format="label",
                       submission_columns=["id", "label"])
    validate_submission(sub, sample, comp)
    [versioned] = complete(root, "submissions")
    assert (versioned / "submission.csv").read_bytes() == (root / "submission.csv").read_bytes()
    proc = run_make(root, "score", COMP="c", OVERRIDES=OVERRIDES)
    assert "accuracy = " in proc.stdout


def test_rerun_is_a_noop(trained):
    root = trained[0]
    before = {d: complete(root, d) for d in ("folds", "models", "oof", "stacks", "submissions")}
    proc = run_make(root, "submit", COMP="c", OVERRIDES=OVERRIDES)
    assert proc.stderr.count("up to date") >= 5 and "training fold" not in proc.stderr
    assert before == {d: complete(root, d) for d in before}


def test_stack_refuses_experiments_on_different_folds(trained):
    root = trained[0]
    (root / "configs" / "exp" / "three.yaml").write_text("folds:\n  n_splits: 3\n")
    tiny = " ".join(o for o in TINY if not o.startswith("folds."))
    run_make(root, "oof", COMP="c", EXP="three", OVERRIDES=tiny)
    proc = run_make(root, "stack", COMP="c", check=False,
                    OVERRIDES=f"{OVERRIDES} stack.experiments=[baseline,three]")
    assert proc.returncode != 0 and "stack inputs built on different folds" in proc.stderr


@pytest.mark.parametrize("kind, metric, options", [
    ("binary", "roc_auc", ["train.ema=true", "train.ema_decay=0.9", "predict.checkpoint=best"]),
    ("tags", "micro_f1", ["predict.tta=[hflip,vflip]", "loss.label_smoothing=0.1"]),
    ("folders", "accuracy", ["train.grad_clip=1.0", "runtime.num_workers=2"])])
def test_other_layouts_and_options_run_through_the_scripts(tmp_path, kind, metric, options):
    """The stage scripts in this process (the start-up of five interpreters is most of their time), the score in
    its own."""
    make_competition(tmp_path, kind, kind, n_train=16, n_test=6)
    for script in ("01_folds.py", "02_train.py", "03_predict.py", "05_stack.py", "06_submit.py"):
        run_here(tmp_path, script, kind, *TINY, *options)
    proc = run_script(tmp_path, "score.py", kind, *TINY, *options, extra=["--labels", f"input/{kind}/test_labels.csv"])
    assert f"{metric} = " in proc.stdout
    sub = pd.read_csv(tmp_path / "submission.csv")
    assert len(sub) == 6


def test_killed_training_resumes_to_the_same_weights(tmp_path):
    """kill -9 after the first epoch checkpoint; the rerun continues and ends where an uninterrupted run ends.
    The uninterrupted run reads the decoded-image cache in the main process; the killed one decodes the files in
    2 persistent workers: runtime settings change nothing, down to the last bit."""
    settings = [o for o in TINY if not o.startswith("train.epochs")] + ["train.epochs=25"]
    fold_a, fold_b, _ = train_killed_and_resumed(tmp_path, settings, kill_after_epochs=1,
                                                 settings_b=("runtime.num_workers=2", "runtime.cache=false"))
    [cache] = (tmp_path / "a" / "cache" / "c").iterdir()
    assert np.load(cache / "images.npy", mmap_mode="r").shape == (40 + 8, 32, 32, 3)  # train + test rows
    assert not (tmp_path / "b" / "cache").exists()
    log = pd.read_csv(fold_b / "log.csv")
    assert log["epoch"].tolist() == list(range(1, 26))
    state_a = torch.load(fold_a / "last.pt", weights_only=True)["model"]
    state_b = torch.load(fold_b / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_two_experiments_stacked_with_xgboost_and_submitted(trained):
    """A second experiment on the same folds (d4 TTA, geometric merge), `make stack` with the XGBoost stacker
    over both, `make submit` from the stack and then from one experiment."""
    root = trained[0]
    (root / "configs" / "exp" / "d4.yaml").write_text(
        "loss:\n  label_smoothing: 0.1\npredict:\n  tta: [d4]\n  tta_merge: geometric\n")
    run_make(root, "oof", COMP="c", EXP="d4", OVERRIDES=OVERRIDES)
    [d4_dir] = complete(root, "oof/c/d4")
    d4 = json.loads((d4_dir / "manifest.json").read_text())
    assert len(d4["views"]) == 8 and "no_tta" in d4["metrics"] and (d4_dir / "oof_plain.npy").is_file()

    stack = f"{OVERRIDES} stack.experiments=[baseline,d4] stack.method=xgboost"
    proc = run_make(root, "submit", COMP="c", OVERRIDES=stack)
    [stack_dir] = [p for p in complete(root, "stacks") if json.loads((p / "manifest.json").read_text())
                   ["output"] == "stack:xgboost"]
    report = pd.read_csv(stack_dir / "report.csv")
    assert report["level"].tolist() == ["baseline (no TTA)", "baseline", "d4 (no TTA)", "d4", "blend:mean",
                                        "blend:rank", "blend:weighted", "blend:geometric", "stack:xgboost"]
    assert report.set_index("level").loc["stack:xgboost", "output"] == "*"
    assert {"fold_0", "fold_1", "mean", "std", "cv"} <= set(report.columns) and "stack:xgboost" in proc.stdout
    assert (stack_dir / "report.png").is_file()
    classes = ["cat", "dog", "sea turtle"]
    stacked = np.load(stack_dir / "test.npy")
    assert np.allclose(stacked.sum(1), 1, atol=1e-5)
    sub = pd.read_csv(root / "submission.csv")
    assert sub["label"].tolist() == [classes[i] for i in stacked.argmax(1)]

    run_make(root, "submit", COMP="c", OVERRIDES=f"{stack} submit.source=d4")
    sub = pd.read_csv(root / "submission.csv")
    assert sub["label"].tolist() == [classes[i] for i in np.load(d4_dir / "test.npy").argmax(1)]


def manifest_of(path):
    return json.loads((path / "manifest.json").read_text())


def test_a_pseudo_label_round_trains_predicts_stacks_and_is_submitted(trained):
    """make pseudo ROUND=1: a set of test rows only, every fold trained on it but validated on real rows alone,
    the round's stack with round 0's row beside it; make submit then submits round 1 unless told otherwise."""
    root = trained[0]
    settings = f"{OVERRIDES} pseudo.rule=all pseudo.soft=true"
    proc = run_make(root, "pseudo", COMP="c", OVERRIDES=settings)
    [pseudo_dir] = complete(root, "pseudo/c/round1")
    pseudo = pd.read_csv(pseudo_dir / "pseudo.csv")
    test_ids = pd.read_csv(root / "input" / "c" / "sample_submission.csv")["id"]
    assert pseudo["id"].tolist() == test_ids.tolist()  # rule all: every test row, and only test rows
    manifest = manifest_of(pseudo_dir)
    round1 = [d for d in complete(root, "models/c/baseline") if manifest_of(d).get("pseudo_round") == 1]
    folds_dir = root / "folds" / "c" / manifest["fold_key"]  # the folds the config trains on
    assert manifest_of(round1[0])["fold_key"] == folds_dir.name and manifest["round"] == 1
    assert np.allclose(np.load(pseudo_dir / "targets.npy").sum(1), 1, atol=1e-5)  # soft: the stack's distribution

    folds = pd.read_csv(folds_dir / "folds.csv")
    assert len(round1) == 2
    for fold_dir in round1:
        m = manifest_of(fold_dir)
        assert m["inputs"]["pseudo"]["key"] == pseudo_dir.name and m["metrics"]["extra_rows"] == len(test_ids)
        assert m["metrics"]["valid_rows"] == (folds["fold"] == m["fold"]).sum()  # real rows only
    [stack1] = [d for d in complete(root, "stacks") if manifest_of(d).get("pseudo_round") == 1]
    report = pd.read_csv(stack1 / "report.csv").set_index("level")
    assert report.loc["round 0: blend:mean", "kind"] == "earlier pseudo-label round"
    assert "round 1 (8 pseudo rows): blend:mean OOF CV accuracy" in proc.stdout

    classes = ["cat", "dog", "sea turtle"]
    run_script(root, "06_submit.py", "c", *settings.split())  # latest round (for these settings): 1
    assert pd.read_csv(root / "submission.csv")["label"].tolist() == [
        classes[i] for i in np.load(stack1 / "test.npy").argmax(1)]
    run_script(root, "06_submit.py", "c", *settings.split(), "submit.round=0")
    [stack0] = [d for d in complete(root, "stacks") if manifest_of(d).get("pseudo_round") == 0
                and manifest_of(d)["inputs"].keys() == {"baseline"}]
    assert pd.read_csv(root / "submission.csv")["label"].tolist() == [
        classes[i] for i in np.load(stack0 / "test.npy").argmax(1)]

    # round 2's models need round 2's set: one line naming the command, nothing written
    proc = run_script(root, "03_predict.py", "c", *settings.split(), "pseudo.round=2", check=False)
    assert proc.returncode != 0 and "make pseudo COMP=c ROUND=2" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (root / "pseudo" / "c" / "round2").exists()


def test_distilled_student_learns_from_the_teachers_oof_on_the_same_folds(trained):
    root = trained[0]
    (root / "configs" / "exp" / "student.yaml").write_text(
        "distill:\n  teacher: baseline\n  alpha: 0.7\n  temperature: 2.0\nmodel:\n  drop_rate: 0.1\n")
    run_make(root, "stack", COMP="c", EXP="student", OVERRIDES=OVERRIDES)
    [student] = [d for d in complete(root, "stacks") if manifest_of(d)["inputs"].keys() == {"student"}]
    report = pd.read_csv(student / "report.csv").set_index("level")
    assert report.loc["teacher of student: baseline", "kind"] == "distillation teacher"
    assert report.loc[["student", "teacher of student: baseline"], ["params_M", "images_per_s"]].notna().all().all()

    student_folds = complete(root, "models/c/student")
    teacher = root / manifest_of(student_folds[0])["inputs"]["teacher"]["path"]
    t = manifest_of(teacher)  # the baseline's round-0 predictions on the student's folds
    assert t["experiment"] == "baseline" and t["fold_key"] == manifest_of(student_folds[0])["fold_key"]
    assert manifest_of(root / t["inputs"]["train"]["path"] / "fold0").get("pseudo_round", 0) == 0
    assert all(manifest_of(d)["inputs"]["teacher"]["key"] == teacher.name for d in student_folds)

    from foldstack.context import Context, load_config
    from foldstack.lineage import load_folds, train_dir
    from foldstack.stages.train import training_rows

    ctx = Context(root, "c", "student", load_config(root, "c", "student", TINY))
    split = load_folds(ctx)
    extra, soft = training_rows(ctx, train_dir(ctx, split.key).inputs, split.folds)
    assert np.array_equal(soft, np.load(teacher / "oof.npy"))  # each train row: its own fold's teacher model
    assert np.array_equal(extra.targets[:, 3:], np.load(teacher / "test.npy")) and len(extra.rows) == 8
    assert np.array_equal(extra.rows, len(ctx.train.ids) + np.arange(8))  # the test rows of the image store


def test_pseudo_source_and_teacher_on_other_folds_are_refused(trained):
    """Their OOF rows come from models that trained on rows of this split's validation folds."""
    root = trained[0]
    (root / "configs" / "exp" / "other-folds.yaml").write_text("folds:\n  seed: 7\n")
    run_make(root, "oof", COMP="c", EXP="other-folds", OVERRIDES=OVERRIDES)
    for script, setting in (("04_pseudo.py", "pseudo.source=other-folds"), ("02_train.py", "distill.teacher=other-folds")):
        proc = run_script(root, script, "c", *TINY, setting, check=False)
        assert proc.returncode != 0 and "built on folds" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert not (root / "pseudo" / "c" / "round1").exists() or len(complete(root, "pseudo/c/round1")) <= 1
