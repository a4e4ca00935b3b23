"""Tiny generated competitions in Kaggle layouts, and helpers to run the real scripts and Make targets."""
import ast
import contextlib
import io
import logging
import os
import runpy
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

# model.pretrained defaults to `auto`, which may ask the Hugging Face hub in the train stage: no test waits on the
# network (set at import, before timm or huggingface_hub is imported; subprocesses inherit it).
os.environ["HF_HUB_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
# Small, fast and from scratch: what every end-to-end test trains.
TINY = ["model.name=test_resnet", "train.epochs=1", "folds.n_splits=2", "data.img_size=32", "data.batch_size=8",
        "runtime.num_workers=0", "train.warmup_epochs=0"]
COLORS = [(220, 40, 40), (40, 200, 40), (40, 40, 220), (200, 200, 40)]


def write_png(path: Path, color, seed: int, size: int = 16) -> None:
    rng = np.random.default_rng(seed)
    img = np.clip(np.array(color)[None, None] + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)


def make_competition(root: Path, name: str, kind: str = "label", n_train: int = 24, n_test: int = 8,
                     classes=("cat", "dog", "sea turtle"), ext: str = ".png", ids_with_ext: bool = False) -> Path:
    """input/<name>/ for kind in: binary, label, tags, class_columns, folders. Returns the folder."""
    folder = Path(root) / "input" / name
    classes = ["0", "1"] if kind == "binary" else list(classes)
    rng = np.random.default_rng(0)
    rows = []
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            c = i % len(classes)
            stem = f"{split}_{i:03d}"
            file = f"{stem}{ext}"
            ident = file if ids_with_ext else stem
            sub = f"{classes[c]}/" if (kind == "folders" and split == "train") else ""
            write_png(folder / split / f"{sub}{file}", COLORS[c % len(COLORS)], seed=i + (1000 if split == "test" else 0))
            if kind == "tags":
                extra = classes[(c + 1) % len(classes)] if rng.random() < 0.5 else ""
                label = " ".join(sorted({classes[c], extra} - {""}))
            else:
                label = classes[c]
            rows.append((split, ident, label))
    frame = pd.DataFrame(rows, columns=["split", "id", "label"])
    train, test = frame[frame.split == "train"], frame[frame.split == "test"]
    target = {"binary": "has_thing", "tags": "tags"}.get(kind, "label")
    if kind != "folders":
        train[["id", "label"]].rename(columns={"label": target}).to_csv(folder / "train.csv", index=False)
    if kind == "class_columns":
        sample = pd.DataFrame({"id": test.id, **{c: 1 / len(classes) for c in classes}})
    else:
        fill = {"binary": 0.5, "tags": classes[0]}.get(kind, classes[0])
        sample = pd.DataFrame({"id": test.id, target: fill})
    sample.to_csv(folder / "sample_submission.csv", index=False)
    test[["id", "label"]].rename(columns={"label": target}).to_csv(folder / "test_labels.csv", index=False)
    return folder


def run_script(root: Path, script: str, comp: str, *overrides, extra=(), check=True) -> subprocess.CompletedProcess:
    cmd = [PY, str(REPO / "scripts" / script), "--root", str(root), "--comp", comp, *extra]
    if overrides:
        cmd += ["--set", *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_here(root: Path, script: str, comp: str, *overrides, extra=(), check=True) -> subprocess.CompletedProcess:
    """run_script in this process, without an interpreter's start-up (seconds a script): the script runs as
    __main__ on its argv; stdout, stderr (with the `foldstack` log lines a script prints) and the exit code of its
    SystemExit come back as run_script's do. A few tests keep run_script for the stderr of a real process."""
    argv = [str(REPO / "scripts" / script), "--root", str(root), "--comp", comp, *extra]
    if overrides:
        argv += ["--set", *overrides]
    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", datefmt="%H:%M:%S"))
    logger, saved_argv, code = logging.getLogger("foldstack"), sys.argv, 0
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        sys.argv = argv
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        sys.argv = saved_argv
        logger.removeHandler(handler)
        logger.setLevel(level)
    proc = subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"{script} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_project(root: Path) -> Path:
    """A project checkout at root that shares this repo's code and venv (as a user's clone would have)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("Makefile", "scripts", ".venv"):
        (root / name).symlink_to(REPO / name)
    (root / "configs" / "exp").mkdir(parents=True)
    return root


def run_make(root: Path, *targets, check=True, **variables) -> subprocess.CompletedProcess:
    variables = {"INSTALL": "", **variables}  # the shared venv is installed already: never reinstall from here
    cmd = ["make", "--no-print-directory", "-C", str(root), *targets] + [f"{k}={v}" for k, v in variables.items()]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"make {' '.join(targets)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


MAKE_ALL = ("01_folds.py", "02_train.py", "03_predict.py", "05_stack.py", "06_submit.py")  # `make all`'s stages


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian package "
                                                            "`chromium`; .ci/run installs it)")


def chromium(*args, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120)


def screenshot(page: Path | str, png: Path, height: int, profile: Path, *args) -> np.ndarray:
    """A headless Chromium screenshot, 1280 wide, of a file or a URL (args: more Chromium flags)."""
    url = page.as_uri() if isinstance(page, Path) else page
    chromium(f"--window-size=1280,{height}", f"--screenshot={png}", *args, url, profile=profile)
    image = cv2.imread(str(png))
    assert image is not None, f"no screenshot of {url}"
    assert image.shape[:2] == (height, 1280)
    return image


def distinct_colours(image: np.ndarray) -> int:
    return len(np.unique(image.reshape(-1, 3), axis=0))


def make_all_here(root: Path, comp: str, *overrides) -> dict:
    """`make all`'s stage scripts in this process (run_here) with TINY and `overrides`: {script: its run}."""
    return {script: run_here(root, script, comp, *TINY, *overrides) for script in MAKE_ALL}


# Markers (registered in pyproject.toml) put on each test from what its code and fixtures call: `slow` when it
# starts a process (a script, make, Ray, torchrun, Chromium) or trains through the stages in this process, plus
# its module's kind of process. `make test-fast` deselects them all.
LAUNCHERS = {"Popen", "run", "check_call", "check_output", "call", "spawn"}  # subprocess.* and mp.spawn
TRAINS_HERE = {"pipeline.run", "train.run", "budget.run", "pseudo.run", "sweep.run", "run_race", "plan_experiment"}
KIND_OF_MODULE = {"test_sweep": "ray", "test_sweep_search": "ray", "test_faults": "faults", "test_distributed": "ddp",
                  "test_export": "onnx"}


def called_names(tree: ast.Module) -> dict[str, set[str]]:
    """Each top-level function of a module: the names it reads, bare or one attribute deep (`subprocess.run`)."""
    calls = {}
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef):
            names = calls[fn.name] = set()
            for node in ast.walk(fn):
                if isinstance(node, ast.Name):
                    names.add(node.id)
                elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    names.add(f"{node.value.id}.{node.attr}")
    return calls


def reaches(start: set[str], calls: dict[str, set[str]]) -> set[str]:
    """The names read by start's functions and, transitively, by every function they call."""
    seen, todo, names = set(), list(start), set()
    while todo:
        fn = todo.pop()
        if fn in seen or fn not in calls:
            continue
        seen.add(fn)
        names |= calls[fn]
        todo += calls[fn]
    return names


def is_slow(names: set[str]) -> bool:
    return bool(names & TRAINS_HERE) or any(n.split(".")[0] in ("subprocess", "mp") and n.split(".")[-1] in LAUNCHERS
                                            for n in names)


def pytest_collection_modifyitems(config, items):
    shared = called_names(ast.parse(Path(__file__).read_text()))
    per_module = {}
    for item in items:
        path = item.path
        if path not in per_module:
            per_module[path] = {**shared, **called_names(ast.parse(path.read_text()))}
        names = reaches({item.originalname, *item.fixturenames}, per_module[path])
        if is_slow(names):
            item.add_marker(pytest.mark.slow)
            if path.stem in KIND_OF_MODULE:
                item.add_marker(getattr(pytest.mark, KIND_OF_MODULE[path.stem]))
        if "CHROMIUM" in names:
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "project")


@pytest.fixture(scope="session")
def tiny_trained(tmp_path_factory) -> Path:
    """Trained once a session: a project whose 3-class competition `c` (24 train, 8 test rows) has the baseline
    split, trained, predicted and stacked with TINY, in this process (as make would). Its images hold two
    byte-identical pairs, as real data does (train_003 = train_000, test_001 = train_001: test_audit finds them).
    Modules that build on it take a copy (copy_project), never write here."""
    root = make_project(tmp_path_factory.mktemp("tiny") / "project")
    folder = make_competition(root, "c", "label")
    shutil.copyfile(folder / "train" / "train_000.png", folder / "train" / "train_003.png")
    shutil.copyfile(folder / "train" / "train_001.png", folder / "test" / "test_001.png")
    from foldstack import pipeline

    pipeline.run(pipeline.context("c", "baseline", TINY, root=root), ["folds", "train", "oof", "stack"])
    return root


def copy_project(project: Path, dst: Path) -> Path:
    """A copy of project at dst to build on (its links to this repo stay links)."""
    shutil.copytree(project, dst, symlinks=True)
    return dst


def epochs_logged(fold_dir_glob) -> int:
    logs = list(fold_dir_glob)
    try:
        return len(pd.read_csv(logs[0])) if logs else 0
    except (pd.errors.EmptyDataError, OSError):
        return 0


def train_killed_and_resumed(tmp_path: Path, settings: list[str], kill_after_epochs: int, timeout: float = 240,
                             settings_b: tuple = ()):
    """Fold 0 trained twice on the same tiny competition: uninterrupted in a/ (in this process: run_here), and in
    b/ in a real process killed with kill -9 once `kill_after_epochs` epochs are logged (so mid-epoch), then rerun
    in another, both with `settings_b` added. The killed fold is only in its hidden work folder (.fold0.partial/),
    never a visible fold0/ without a manifest. Returns (fold dir a, fold dir b, rerun)."""
    for root in (tmp_path / "a", tmp_path / "b"):
        make_competition(root, "c", "label", n_train=40)
        run_here(root, "01_folds.py", "c", *settings)
    run_here(tmp_path / "a", "02_train.py", "c", *settings, extra=["--fold", "0"])

    b, settings = tmp_path / "b", [*settings, *settings_b]
    cmd = [PY, str(REPO / "scripts" / "02_train.py"), "--root", str(b), "--comp", "c", "--fold", "0", "--set", *settings]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while (epochs_logged(b.glob("models/c/baseline/*/.fold0.partial/log.csv")) < kill_after_epochs
           and time.time() < deadline and proc.poll() is None):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    [work_b] = b.glob("models/c/baseline/*/.fold0.partial")
    assert not (work_b / "manifest.json").exists() and not list(b.glob("models/c/baseline/*/fold0"))
    resumed = run_script(b, "02_train.py", "c", *settings, extra=["--fold", "0"])
    assert "resuming after epoch" in resumed.stderr
    [fold_b] = b.glob("models/c/baseline/*/fold0")
    assert (fold_b / "manifest.json").is_file() and not work_b.exists()
    [fold_a] = (tmp_path / "a").glob("models/c/baseline/*/fold0")
    assert fold_a.name == fold_b.name and fold_a.parent.name == fold_b.parent.name
    return fold_a, fold_b, resumed
