"""make bundle / make kaggle-push: the submission's models, level 2 and wheels as a Kaggle dataset + kernel.

The round trip: two experiments (one with TTA) stacked by logistic regression on level-1 probabilities and an
image meta feature, `make submit`, `make bundle`; then a fresh venv that can reach no index gets torch and
torchvision "from the image" (a .pth file pointing at links to only those packages and their own requirements),
kernel/inference.py installs the rest from dataset/wheels with pip --no-index and writes submission.csv, which
must be make submit's byte for byte. The competition's format is class_columns, so the file holds every
probability, not only an argmax. Kaggle itself is never reached: the push is tested on the commands it runs,
through a fake kaggle executable."""
import importlib.metadata
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REPO, TINY, make_competition, make_project, run_make, run_script

from foldstack import pipeline
from foldstack.bundle.metadata import kaggle_ids
from foldstack.bundle.push import kernel_command, status_command, upload_command
from foldstack.bundle.wheels import IMAGE_PROVIDES, NOT_FOR_INFERENCE, Target, closure, inference_pins
from foldstack.config.competition import Competition
from foldstack.config.levels import Stack, XGBoost
from foldstack.errors import PipelineError
from foldstack.stacking.level import fit_level
from foldstack.stacking.persist import load_level, save_level

STACK = ["stack.experiments=[baseline,flip]", "stack.method=logreg", "stack.meta_features=[file_size]",
         "stack.compare=[]"]
SETTINGS = [*TINY, *STACK]
USER = "tester"
PYTHON = Target.this_interpreter().python


def bundle_script(root: Path, *overrides, extra=(), check=True):
    return run_script(root, "bundle.py", "c", *SETTINGS, *overrides,
                      extra=["--exp", "flip", "--kaggle-user", USER, "--wheel-cache", str(root.parent / "wheels"),
                             *extra], check=check)


def tree(folder: Path) -> list[str]:
    """Every path under folder (hidden staging folders included), to prove a failed run wrote nothing."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def one_error_line(proc) -> str:
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return errors[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A project with both experiments trained and predicted, stacked and submitted in-process (the stages
    make runs), then `make bundle`: (root, bundle folder, make submit's submission.csv)."""
    root = make_project(tmp_path_factory.mktemp("bundle") / "p")
    make_competition(root, "c", "class_columns")
    (root / "configs" / "exp" / "flip.yaml").write_text("predict:\n  tta: [hflip]\ntrain:\n  seed: 7\n")
    ctx = pipeline.context("c", "flip", SETTINGS, root=root)
    pipeline.run(ctx.derive(exp="baseline"), ["folds", "train", "oof"])
    pipeline.run(ctx, ["train", "oof", "stack", "submit"])
    [submission] = root.glob("submissions/c/*/submission.csv")
    proc = run_make(root, "bundle", COMP="c", EXP="flip", OVERRIDES=" ".join(SETTINGS), KAGGLE_USER=USER,
                    BUNDLE_ARGS=f"--wheel-cache {root.parent / 'wheels'}")
    bundle = Path(proc.stdout.strip().splitlines()[-1])
    assert bundle.parent == root / "bundle" / "c" and (bundle / "manifest.json").is_file()
    return root, bundle, submission


def image_packages(folder: Path) -> Path:
    """Links to the installed torch and torchvision and their own requirements only (code and dist-info): what
    Kaggle's image provides."""
    folder.mkdir()
    for name in closure(IMAGE_PROVIDES, PYTHON):
        dist = importlib.metadata.distribution(name)
        site = Path(dist.locate_file(""))
        for top in {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
            if not (folder / top).exists():
                (folder / top).symlink_to(site / top)
    return folder


@pytest.fixture(scope="module")
def kaggle_venv(tmp_path_factory):
    """A fresh venv (no system site-packages) with the image's packages on its path and nothing of this project;
    its python and the environment it runs in: no pip index, no config, no user site."""
    base = tmp_path_factory.mktemp("kaggle")
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, timeout=120)
    [site] = (base / "venv" / "lib").glob("python*/site-packages")
    (site / "kaggle_image.pth").write_text(f"{image_packages(base / 'image')}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PYTHONNOUSERSITE="1", HF_HUB_OFFLINE="1")
    return base / "venv" / "bin" / "python", env


def run_kernel(kaggle_venv, bundle: Path, input_dir: Path, out: Path, *extra):
    python, env = kaggle_venv
    return subprocess.run([str(python), str(bundle / "kernel" / "inference.py"), "--input", str(input_dir),
                           "--output", str(out), *extra], capture_output=True, text=True, env=env, timeout=600)


WHERE = """import importlib.util, json, sys
print(json.dumps({m: getattr(importlib.util.find_spec(m), "origin", None) for m in sys.argv[1:]}))"""


def venv_imports(kaggle_venv, *modules: str) -> dict:
    """{module: the file the venv imports it from, None when it cannot}."""
    python, env = kaggle_venv
    proc = subprocess.run([str(python), "-c", WHERE, *modules], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# ---- the round trip ------------------------------------------------------------------------------------------------

def test_a_rerun_is_the_same_folder_and_rebuilds_nothing(built):
    """First in the file, right after the build: the key hashes the project's sources too."""
    root, bundle, _ = built
    manifest = (bundle / "manifest.json").read_bytes()
    proc = bundle_script(root)
    assert Path(proc.stdout.strip().splitlines()[-1]) == bundle and "bundle up to date" in proc.stderr
    assert (bundle / "manifest.json").read_bytes() == manifest


def test_the_kernel_rebuilds_make_submits_file_offline(built, kaggle_venv, tmp_path):
    root, bundle, submission = built
    assert venv_imports(kaggle_venv, "foldstack")["foldstack"] is None  # before: only what the image has
    proc = run_kernel(kaggle_venv, bundle, root / "input" / "c", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "installing: install --no-index --no-deps" in proc.stdout
    assert f"torch {torch.__version__} (bundle: {importlib.metadata.version('torch')})" in proc.stdout
    assert "warning" not in proc.stderr
    written = tmp_path / "submission.csv"
    assert proc.stdout.strip().splitlines()[-1] == str(written)
    assert written.read_bytes() == submission.read_bytes()
    probs = pd.read_csv(written).drop(columns="id").to_numpy()
    assert probs.shape == (8, 3) and np.allclose(probs.sum(1), 1) and len({tuple(r) for r in probs}) == 8

    venv = Path(kaggle_venv[0]).parent.parent
    [site] = (venv / "lib").glob("python*/site-packages")
    where = venv_imports(kaggle_venv, "foldstack", "timm", "torch", "matplotlib", "xgboost", "iterstrat")
    assert where["foldstack"].startswith(str(site)) and where["timm"].startswith(str(site))  # the bundled wheels
    assert where["torch"].startswith(str(venv.parent / "image"))  # the image's
    assert where["matplotlib"] is where["xgboost"] is where["iterstrat"] is None  # not needed by inference


def test_an_experiment_as_the_source(built, kaggle_venv, tmp_path):
    """submit.source=baseline: no level 2, one experiment's folds; the kernel's file is make submit's."""
    root, _, _ = built
    installed = venv_imports(kaggle_venv, "foldstack")["foldstack"] is not None
    before = set(root.glob("submissions/c/*/submission.csv"))
    pipeline.run(pipeline.context("c", "flip", [*SETTINGS, "submit.source=baseline"], root=root), ["submit"])
    [submission] = set(root.glob("submissions/c/*/submission.csv")) - before
    bundle = Path(bundle_script(root, "submit.source=baseline").stdout.strip().splitlines()[-1])
    spec = json.loads((bundle / "dataset" / "bundle.json").read_text())
    assert spec["source"] == "baseline" and spec["level2"] is None and not (bundle / "dataset" / "level2").exists()
    assert [e["name"] for e in spec["experiments"]] == ["baseline"]
    proc = run_kernel(kaggle_venv, bundle, root / "input" / "c", tmp_path, "--strict-versions")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ("installing" in proc.stdout) is not installed  # foldstack importable already: no second install
    assert (tmp_path / "submission.csv").read_bytes() == submission.read_bytes()


# ---- what a bundle holds -------------------------------------------------------------------------------------------

def test_the_dataset_and_kernel_files(built):
    root, bundle, _ = built
    dataset, kernel = bundle / "dataset", bundle / "kernel"
    spec = json.loads((dataset / "bundle.json").read_text())
    key = bundle.name
    slug = json.loads((dataset / "dataset-metadata.json").read_text())["id"].split("/")[1]
    assert slug.startswith("c-") and len(slug) == 10  # <comp>-<8 hex of the content hash>
    assert json.loads((dataset / "dataset-metadata.json").read_text()) == {
        "id": f"{USER}/{slug}", "title": slug, "licenses": [{"name": "other"}]}
    meta = json.loads((kernel / "kernel-metadata.json").read_text())
    assert meta["id"] == f"{USER}/{slug}-kernel" and meta["title"] == f"{slug}-kernel"
    assert meta["enable_internet"] is False and meta["enable_gpu"] is False and meta["is_private"] is True
    assert meta["dataset_sources"] == [f"{USER}/{slug}"] and meta["competition_sources"] == ["c"]
    assert meta["code_file"] == "inference.ipynb" and meta["kernel_type"] == "notebook"
    script = (kernel / "inference.py").read_text()
    nb = json.loads((kernel / "inference.ipynb").read_text())
    assert nb["nbformat"] == 4 and [c["cell_type"] for c in nb["cells"]] == ["code"]
    assert "".join(nb["cells"][0]["source"]) == script
    assert f'"key": "{key}"' in script and f'"dataset": "{USER}/{slug}"' in script

    assert spec["key"] == key and spec["source"] == "stack" and spec["level2"] == "level2"
    assert spec["meta_features"] == ["file_size"] and spec["thresholds"] is None and spec["n_outputs"] == 3
    assert spec["versions"] == {"python": PYTHON, "torch": importlib.metadata.version("torch"),
                                "torchvision": importlib.metadata.version("torchvision"),
                                "foldstack": importlib.metadata.version("foldstack")}
    # each fold's file holds exactly the weights that fold's checkpoint predicts with
    for exp in spec["experiments"]:
        [models] = root.glob(f"models/c/{exp['name']}/*")
        for k, fold in enumerate(exp["folds"]):
            [bundled] = torch.load(dataset / fold, weights_only=True)["weights"]
            trained = torch.load(models / f"fold{k}" / "last.pt", weights_only=True)["model"]  # checkpoint=last
            assert bundled.keys() == trained.keys() and all(torch.equal(bundled[n], trained[n]) for n in trained)

    # the wheels: foldstack + exactly the pins, none of the image's nor what inference never imports
    pins = (dataset / "wheels" / "requirements.txt").read_text().split()
    names = {p.split("==")[0] for p in pins}
    assert names == {"foldstack", *inference_pins(Target.this_interpreter(), with_xgboost=False)}
    assert len(spec["wheels"]) == len(pins) == len(list((dataset / "wheels").glob("*.whl")))
    assert {"timm", "pandas", "scikit-learn", "opencv-python-headless", "albumentations"} <= names
    assert not names & ({*closure(IMAGE_PROVIDES, PYTHON), *NOT_FOR_INFERENCE})


def test_a_missing_trained_fold_is_one_line_and_writes_nothing(built):
    root, _, _ = built
    [fold] = root.glob("models/c/flip/*/fold1")
    before = tree(root / "bundle")
    fold.rename(fold.with_name(".fold1.moved"))
    try:
        proc = bundle_script(root, extra=["--kernel-id", f"{USER}/another-kernel"], check=False)
    finally:
        fold.with_name(".fold1.moved").rename(fold)
    assert "fold(s) [1] of flip not trained" in one_error_line(proc)
    assert tree(root / "bundle") == before


def test_the_level2_is_the_stacks_own_copied(built):
    """make stack saved its fitted level 2 (checked to load back as fitted); the bundle holds those very files."""
    root, bundle, _ = built
    [stack] = root.glob("stacks/c/*")
    saved = json.loads((stack / "manifest.json").read_text())["level2"]
    assert saved["method"] == "logreg" and saved["max_abs_diff"] <= 1e-6 and saved["meta_features"] == ["file_size"]
    assert saved["files"] == ["level2.json", "level2.npz"]
    for name in saved["files"]:
        assert (bundle / "dataset" / "level2" / name).read_bytes() == (stack / "level2" / name).read_bytes()


# ---- level 2 as files -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel"])
def test_a_saved_level2_predicts_bit_for_bit(task, tmp_path):
    """fit_level's model saved (JSON, npz, booster JSON; no pickle) and loaded back gives the test predictions of
    the fit itself exactly, for every method; a meta-model applies to new rows as its folds' mean."""
    rng = np.random.default_rng(1)
    k = 1 if task == "binary" else 3
    y = np.eye(3)[rng.integers(0, 3, 60)] if task == "multiclass" else (rng.random((60, k)) < 0.4).astype(float)
    folds = np.arange(60) % 3
    oofs = [np.clip(y * 0.6 + rng.random((60, k)) * 0.4, 0, 1).astype(np.float32) for _ in range(2)]
    tests = [rng.random((15, k)).astype(np.float32) for _ in range(2)]
    meta = (rng.random((60, 2)), rng.random((15, 2)))
    comp = Competition(task=task, classes=["0", "1"] if task == "binary" else list("abc"), metric="log_loss")
    st = Stack(xgboost=XGBoost(n_estimators=20, early_stopping_rounds=5), seed=3)
    for method in ("logreg", "xgboost", "weighted", "mean", "rank", "geometric"):
        fit = fit_level(method, oofs, tests, y, folds, comp, st, *meta)
        folder = tmp_path / method
        folder.mkdir()
        files = save_level(folder, fit.model)
        assert all((folder / f).is_file() for f in files) and not list(folder.glob("*.pkl"))
        loaded = load_level(folder)
        np.testing.assert_array_equal(loaded.predict(tests, meta[1]), fit.test)
        if method in ("logreg", "xgboost"):  # new rows: what the same fit predicts for them
            new_tests, new_meta = [rng.random((4, k)).astype(np.float32) for _ in range(2)], rng.random((4, 2))
            refit = fit_level(method, oofs, new_tests, y, folds, comp, st, meta[0], new_meta)
            np.testing.assert_array_equal(loaded.predict(new_tests, new_meta), refit.test)
    if task == "multiclass":
        assert json.loads((tmp_path / "weighted" / "level2.json").read_text())["weights"] == pytest.approx(
            fit_level("weighted", oofs, tests, y, folds, comp, st).info["weights"])


def test_an_unreadable_level2_is_one_line(tmp_path):
    (tmp_path / "level2.json").write_text('{"format": 2, "kind": "meta"}')
    with pytest.raises(PipelineError, match=r"level2.json: unreadable level 2 \(KeyError"):
        load_level(tmp_path)


# ---- wheels and ids -------------------------------------------------------------------------------------------------

def test_the_wheel_pins():
    target = Target.this_interpreter()
    pins, with_xgb = inference_pins(target, False), inference_pins(target, True)
    image = closure(IMAGE_PROVIDES, target.python)
    assert {"torch", "torchvision", "numpy", "pillow", "typing-extensions"} <= set(image)
    assert pins["timm"] == importlib.metadata.version("timm") and "huggingface-hub" in pins  # timm's own
    assert not set(pins) & set(image) and "matplotlib" not in pins and "contourpy" not in pins
    assert set(with_xgb) - set(pins) >= {"xgboost"} and with_xgb["xgboost"] == importlib.metadata.version("xgboost")
    with pytest.raises(PipelineError, match="--python-version 'three'"):
        Target.this_interpreter("three")


def test_kaggle_ids(tmp_path, monkeypatch):
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path))
    with pytest.raises(PipelineError, match="no Kaggle user name .* --kaggle-user"):
        kaggle_ids("c", "1234abcd")
    (tmp_path / "kaggle.json").write_text('{"username": "someone", "key": "k"}')
    ids = kaggle_ids("Aerial Cactus!", "1234abcd", competition="aerial-cactus-identification")
    assert ids.dataset == "someone/aerial-cactus-1234abcd" and ids.kernel == "someone/aerial-cactus-1234abcd-kernel"
    assert kaggle_ids("c", "1234abcd", user="me", kernel="me/my-kernel").kernel == "me/my-kernel"
    with pytest.raises(PipelineError, match="--dataset-id 'me/x'"):
        kaggle_ids("c", "1234abcd", dataset="me/x")
    with pytest.raises(PipelineError, match="'Aerial Cactus!' is not a Kaggle competition slug"):
        kaggle_ids("Aerial Cactus!", "1234abcd", user="me")


# ---- make kaggle-push ----------------------------------------------------------------------------------------------

FAKE_KAGGLE = """#!/bin/sh
# A stand-in for the kaggle CLI: logs its arguments; a dataset exists once created.
echo "$@" >> "$(dirname "$0")/calls.log"
case "$1 $2" in
  "datasets status") if [ -f "$(dirname "$0")/created" ]; then echo ready; else echo "404 Not Found" >&2; exit 1; fi ;;
  "datasets create") touch "$(dirname "$0")/created"; echo "Dataset is being created" ;;
  *) echo ok ;;
esac
"""


def test_push_commands(built, tmp_path):
    _, bundle, _ = built
    cli = tmp_path / "kaggle"
    slug = json.loads((bundle / "dataset" / "dataset-metadata.json").read_text())["id"]
    assert status_command(cli, slug) == [str(cli), "datasets", "status", slug]
    assert upload_command(cli, bundle, exists=False) == [str(cli), "datasets", "create", "-p",
                                                         str(bundle / "dataset"), "-r", "zip"]
    assert upload_command(cli, bundle, exists=True) == [str(cli), "datasets", "version", "-p", str(bundle / "dataset"),
                                                        "-r", "zip", "-m", f"foldstack bundle {bundle.name}"]
    assert kernel_command(cli, bundle) == [str(cli), "kernels", "push", "-p", str(bundle / "kernel")]


def run_push(root: Path, *extra, env=None):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "kaggle_push.py"), "--root", str(root), "--comp", "c",
                           *extra], capture_output=True, text=True, timeout=120, env=env)


def test_push_creates_then_versions_the_dataset_and_pushes_the_kernel(built, tmp_path):
    root, bundle, _ = built
    cli = tmp_path / "kaggle"
    cli.write_text(FAKE_KAGGLE)
    cli.chmod(cli.stat().st_mode | stat.S_IXUSR)
    slug = json.loads((bundle / "dataset" / "dataset-metadata.json").read_text())["id"]
    env = {**os.environ, "KAGGLE_USERNAME": USER, "KAGGLE_KEY": "k"}
    latest = max((p for p in (root / "bundle" / "c").iterdir() if not p.name.startswith(".")),
                 key=lambda p: json.loads((p / "manifest.json").read_text())["created_ns"])
    log = tmp_path / "calls.log"

    proc = run_push(root, "--bundle", str(bundle), "--cli", str(cli), env=env)
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().splitlines() == [f"datasets status {slug}", f"datasets create -p {bundle}/dataset -r zip",
                                            f"datasets status {slug}", f"kernels push -p {bundle}/kernel"]
    log.unlink()
    proc = run_push(root, "--bundle", str(bundle), "--cli", str(cli), env=env)
    assert log.read_text().splitlines()[:2] == [
        f"datasets status {slug}", f"datasets version -p {bundle}/dataset -r zip -m foldstack bundle {bundle.name}"]
    assert proc.stdout.splitlines()[0].endswith(f"-m 'foldstack bundle {bundle.name}'")

    log.unlink()
    dry = run_push(root, "--cli", str(cli), "--dry-run", env=env)  # the latest bundle of c, nothing run
    assert dry.returncode == 0 and not log.exists()
    assert dry.stdout.splitlines() == [f"{cli} datasets create -p {latest}/dataset -r zip",
                                       f"{cli} kernels push -p {latest}/kernel"]

    no_credentials = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")} | {"HOME": str(tmp_path)}
    assert "no Kaggle credentials" in one_error_line(run_push(root, "--cli", str(cli), env=no_credentials))
    assert not log.exists()
    assert "no bundle of c" in one_error_line(run_push(tmp_path / "nothing", "--cli", str(cli), env=env))


def test_the_notebook_runs_as_a_cell_without_a_file_or_our_argv(built):
    """The notebook's cell exec'd as ipykernel would: no __file__, ipykernel's own argv. Off Kaggle it finds no
    attached dataset and says so in one line (it got past argument parsing, before importing anything heavy)."""
    _, bundle, _ = built
    cell = "".join(json.loads((bundle / "kernel" / "inference.ipynb").read_text())["cells"][0]["source"])
    runner = ("import sys, types; sys.modules['ipykernel'] = types.ModuleType('ipykernel'); "
              "sys.argv = ['ipykernel_launcher.py', '-f', 'kernel.json']; "
              "exec(compile(sys.stdin.read(), '<cell>', 'exec'), {'__name__': '__main__'})")
    proc = subprocess.run([sys.executable, "-c", runner], input=cell, capture_output=True, text=True, timeout=60)
    dataset = json.loads((bundle / "dataset" / "dataset-metadata.json").read_text())["id"]
    assert f"the bundle's dataset {dataset} is not attached" in one_error_line(proc)
