"""make audit on a real (tiny) pipeline run: it passes, then each kind of tampering is caught by a FAIL line that
names the row id and the artifact, with exit 1 and one `error:` line."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from foldstack.artifacts import input_ref

from conftest import TINY, copy_project, run_here

COMP = "c"


def audit(root, *extra):
    return run_here(root, "audit.py", COMP, *TINY, *extra, check=False)


def lines(proc, status):
    return [ln for ln in proc.stdout.splitlines() if ln.startswith(status)]


def failed(proc, *fragments):
    """Exit 1, one `error:` line, and a FAIL line holding every fragment: that line."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr and errors[0].startswith(f"error: audit of {COMP}: ")
    hits = [ln for ln in lines(proc, "FAIL") if all(f in ln for f in fragments)]
    assert hits, "\n".join(lines(proc, "FAIL"))
    return hits[0]


def one(root, pattern):
    [path] = sorted(p for p in root.glob(pattern) if (p / "manifest.json").is_file())
    return path


def manifest(path):
    return json.loads((path / "manifest.json").read_text())


def write_manifest(path, m):
    (path / "manifest.json").write_text(json.dumps(m))


@pytest.fixture(scope="module")
def built(tiny_trained, tmp_path_factory):
    """The session's tiny project (folds, train, oof, stack on a 3-class competition holding byte-identical images:
    train_000 = train_003 within train, train_001 = test_001 across train/test) with a folds.dedupe split, a
    round-1 pseudo-label set selected from the stack, and a distilled student's fold manifests as stage 02 writes
    them (the baseline's models with its OOF as `inputs.teacher`: training one would double this file's time).
    Returns (project, the audit of its competition before anything was built, the audit of the project)."""
    bare = tmp_path_factory.mktemp("audit") / "bare"
    shutil.copytree(tiny_trained / "input", bare / "input")
    nothing = audit(bare)
    root = copy_project(tiny_trained, bare.parent / "project")
    run_here(root, "01_folds.py", COMP, *TINY, "folds.dedupe=true")

    from foldstack.context import Context, load_config
    from foldstack.stages import pseudo

    ctx = Context(root, COMP, "baseline", load_config(root, COMP, "baseline", [*TINY, "pseudo.rule=all"]))
    pseudo.select(ctx, 1)
    base = one(root, f"models/{COMP}/baseline/*/fold0").parent
    teacher = input_ref(one(root, f"oof/{COMP}/baseline/*"), root)
    student = root / "models" / COMP / "student" / "0123456789ab"
    shutil.copytree(base, student)
    for fold in student.glob("fold*"):
        m = manifest(fold)
        m["inputs"]["teacher"], m["experiment"] = teacher, "student"
        write_manifest(fold, m)
    return root, nothing, audit(root)


@pytest.fixture
def copy(built, tmp_path):
    """A copy of the built project to tamper with."""
    dst = tmp_path / "project"
    shutil.copytree(built[0], dst, symlinks=True)
    return dst


def test_nothing_built_yet_is_said_not_an_error(built):
    proc = built[1]
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"nothing built yet for {COMP}: no folds/, models/, oof/, stacks/ or pseudo/")
    assert "INFO  duplicates  train/test: 1 of 8 test images are byte-identical to 1 train images " \
           "(train 'train_001' = test 'test_001')" in proc.stdout


def test_the_real_pipeline_passes_every_check(built):
    root, _, proc = built
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not lines(proc, "FAIL") and "error:" not in proc.stderr
    passed = {ln.split()[1] for ln in lines(proc, "PASS")}
    assert passed == {"folds", "models", "oof", "stacks", "pseudo", "distill", "duplicates", "classes"}
    out = proc.stdout
    oof = one(root, f"oof/{COMP}/baseline/*").relative_to(root)
    assert f"PASS  oof         {oof}: 24 train ids each predicted once, by the model of the fold that held it " \
           f"out" in out
    assert f"PASS  pseudo      pseudo/{COMP}/round1/" in out and "8 pseudo-label rows, all test ids" in out
    assert "train/test: 1 of 8 test images are byte-identical to 1 train images" in out
    assert "within train: 2 images in 1 sets of byte-identical files" in out
    # the pseudo row test_001 is train_001's twin: every fold trains on it, including train_001's validation fold
    assert "WARN  pseudo" in out and "test 'test_001' = train 'train_001'" in out
    splits = {manifest(p)["config"]["folds"].get("dedupe", False): p.relative_to(root)
              for p in (root / "folds" / COMP).iterdir()}
    assert f"PASS  duplicates  {splits[True]}/folds.csv: no set of byte-identical train images crosses folds" in out
    plain = pd.read_csv(root / splits[False] / "folds.csv").set_index("id")["fold"]
    # without dedupe, folds.seed 42 puts the twins in different folds: a warning (with dedupe: the PASS above)
    assert (plain["train_000"], plain["train_003"]) == (0, 1)
    assert f"WARN  duplicates  {splits[False]}/folds.csv: 1 set(s) of byte-identical train images cross folds, " \
           f"1 pair(s) ('train_000' (fold 0) = 'train_003' (fold 1))" in out
    # per-fold class table and the JSON copy of the report
    assert "rows per class in each validation fold" in out and "sea turtle" in out
    report = json.loads((root / "audit" / COMP / "audit.json").read_text())
    assert report["summary"]["FAIL"] == 0 and report["summary"]["PASS"] == len(lines(proc, "PASS"))
    table = report["tables"][f"rows per class in each validation fold: {splits[False]}/folds.csv"]
    assert [row["all"] for row in table] == [8, 8, 8]


def test_oof_fold_column_rewritten(copy):
    oof = one(copy, f"oof/{COMP}/baseline/*")
    folds = np.load(oof / "folds.npy")
    ids = pd.read_csv(oof / "oof.csv")["id"]
    folds[5] = 1 - folds[5]
    np.save(oof / "folds.npy", folds)
    failed(audit(copy), f"{oof.relative_to(copy)}/folds.npy: id {ids[5]!r} is in fold {folds[5]} here but "
                        f"in fold {1 - folds[5]} of folds/{COMP}/")


def test_fold_manifest_says_another_fold(copy):
    oof = one(copy, f"oof/{COMP}/baseline/*")
    fold1 = copy / manifest(oof)["inputs"]["train"]["path"] / "fold1"
    m = manifest(fold1)
    m["fold"] = 0
    write_manifest(fold1, m)
    first = pd.read_csv(oof / "oof.csv").query("fold == 1")["id"].iloc[0]
    proc = audit(copy)
    failed(proc, f"FAIL  models      {fold1.relative_to(copy)}: its manifest says it validated on fold 0")
    failed(proc, f"{oof.relative_to(copy)}: 12 OOF rows of fold 1 ('{first}'",
           f"were predicted by {fold1.relative_to(copy)}, whose manifest says it validated on fold 0")


def test_train_id_in_a_pseudo_label_set(copy):
    path = one(copy, f"pseudo/{COMP}/round1/*")
    frame = pd.read_csv(path / "pseudo.csv", dtype=str)
    frame.loc[len(frame)] = ["train_007"] + frame.iloc[0, 1:].tolist()
    frame.to_csv(path / "pseudo.csv", index=False)
    key = manifest(path)["fold_key"]
    fold = pd.read_csv(copy / "folds" / COMP / key / "folds.csv").set_index("id")["fold"]["train_007"]
    failed(audit(copy), f"{path.relative_to(copy)}/pseudo.csv: id 'train_007' is a train id (validation fold {fold} "
                        f"of folds/{COMP}/{key}/folds.csv)")


def test_duplicates_across_folds_under_dedupe(copy):
    [split] = [p for p in (copy / "folds" / COMP).iterdir() if manifest(p)["config"]["folds"].get("dedupe")]
    frame = pd.read_csv(split / "folds.csv")
    frame.loc[frame["id"] == "train_003", "fold"] = 1 - frame.set_index("id")["fold"]["train_000"]
    frame.to_csv(split / "folds.csv", index=False)
    a = frame.set_index("id")["fold"]
    failed(audit(copy), f"FAIL  duplicates  {split.relative_to(copy)}/folds.csv: 1 set(s) of byte-identical train "
                        f"images cross folds, 1 pair(s) ('train_000' (fold {a['train_000']}) = 'train_003' (fold "
                        f"{a['train_003']})); although folds.dedupe is on")


def test_stack_folds_and_inputs_on_other_folds(copy):
    stack = one(copy, f"stacks/{COMP}/*")
    folds = np.load(stack / "folds.npy")
    folds[2] = 1 - folds[2]
    np.save(stack / "folds.npy", folds)
    m = manifest(stack)
    m["inputs"]["baseline"]["fold_key"] = "0000other000"
    write_manifest(stack, m)
    ids = pd.read_csv(stack / "oof.csv")["id"]
    proc = audit(copy)
    failed(proc, f"{stack.relative_to(copy)}/folds.npy: id {ids[2]!r} is in fold {folds[2]} here but in fold "
                 f"{1 - folds[2]} of folds/{COMP}/")
    failed(proc, f"{stack.relative_to(copy)}/folds.npy: id {ids[2]!r} is in fold {folds[2]} here but in fold "
                 f"{1 - folds[2]} of level 1 input baseline")
    failed(proc, f"{stack.relative_to(copy)}: input baseline", "the stack on")


def test_teacher_predicted_on_other_folds(copy):
    oof = one(copy, f"oof/{COMP}/baseline/*")
    teacher = copy / "oof" / COMP / "teacher" / oof.name
    shutil.copytree(oof, teacher)
    folds = np.load(teacher / "folds.npy")
    folds[[0, 1]] = folds[[1, 0]] if folds[0] != folds[1] else 1 - folds[[0, 1]]
    np.save(teacher / "folds.npy", folds)
    for fold in (copy / "models" / COMP / "student").glob("*/fold*"):
        m = manifest(fold)
        m["inputs"]["teacher"]["path"] = str(teacher.relative_to(copy))
        write_manifest(fold, m)
    failed(audit(copy), f"FAIL  distill     {teacher.relative_to(copy)}/folds.npy: id 'train_000''s soft target for "
                        f"student models/{COMP}/student/0123456789ab comes from the teacher model of fold {folds[0]}")


def test_class_missing_from_a_validation_fold(copy):
    """A split with every sea turtle in fold 0: flagged (WARN) under accuracy, a FAIL when the metric needs it."""
    [split] = [p for p in (copy / "folds" / COMP).iterdir() if not manifest(p)["config"]["folds"].get("dedupe")]
    fake = split.parent / "00000000fake"
    shutil.copytree(split, fake)
    frame = pd.read_csv(fake / "folds.csv")
    turtles = frame.index[frame["id"].isin([f"train_{i:03d}" for i in range(2, 24, 3)])]
    frame.loc[turtles, "fold"] = 0
    frame.loc[frame.index.difference(turtles), "fold"] = [1] * 12 + [0] * 4
    frame.to_csv(fake / "folds.csv", index=False)
    m = manifest(fake)
    m["key"] = m["fold_key"] = fake.name
    m["metrics"]["fold_sizes"] = [12, 12]
    write_manifest(fake, m)
    proc = audit(copy)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"WARN  classes     {fake.relative_to(copy)}/folds.csv: 1 class/fold gap(s): 'sea turtle' in fold 1 " \
           f"(not needed by the metric accuracy)" in proc.stdout
    m["config"]["competition"]["metric"] = "macro_f1"
    write_manifest(fake, m)
    failed(audit(copy), f"FAIL  classes     {fake.relative_to(copy)}/folds.csv: validation fold 1 has no train row of "
                        f"class 'sea turtle'; competition.metric macro_f1 needs it in every validation fold")


def test_a_patient_in_two_validation_folds_fails(copy):
    """competition.group_col set after the baseline split: its patients (pairs of rows) straddle folds, a FAIL
    naming them; the split made with the groups passes."""
    train = pd.read_csv(copy / "input" / COMP / "train.csv", dtype=str)
    train["patient_id"] = [f"P{i // 2}" for i in range(len(train))]
    train.to_csv(copy / "input" / COMP / "train.csv", index=False)
    before = sorted(p.name for p in (copy / "folds" / COMP).iterdir())
    run_here(copy, "01_folds.py", COMP, *TINY, "competition.group_col=patient_id")
    [grouped] = [p for p in (copy / "folds" / COMP).iterdir() if p.name not in before]
    folds = pd.read_csv(grouped / "folds.csv").set_index("id")["fold"]
    assert train.groupby("patient_id")["id"].agg(lambda ids: folds[list(ids)].nunique()).max() == 1
    proc = audit(copy, "competition.group_col=patient_id")
    line = failed(proc, "FAIL  groups", "patient_id groups straddle validation folds")
    assert "'P" in line and "(2 folds)" in line
    assert f"PASS  groups      {grouped.relative_to(copy)}/folds.csv: each of the 12 patient_id groups in one " \
           f"validation fold" in proc.stdout
