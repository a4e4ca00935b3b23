"""`make sweep` on a local Ray with 2 CPUs (scripts/sweep.py in a subprocess, as make runs it): a 4-trial grid
killed after its first trial and resumed (only what was unfinished runs; every trial equals its experiment run by
hand with `make oof`, bit for bit; the leaderboard and its `make stack` command) and its trials' names. The search,
the rung book and the spec's checks are in test_sweep_search.py (a module each: `make test`'s workers run both
sweeps at once)."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import PY, REPO, TINY, make_competition, make_project, run_make, run_script
from foldstack import pipeline
from foldstack.artifacts import is_complete, read_manifest
from foldstack.sweep.spec import load_spec
from foldstack.sweep.trials import base_layer, grid_trials, write_trial

# 1 CPU a task on 2: two folds at once, each with 1 torch thread (by hand: OMP_NUM_THREADS=1, the same floats).
GRID = dict(overrides=[*TINY, "train.epochs=2"], grid={"train.lr": [0.001, 0.01], "data.batch_size": [4, 8]}, best=2)


def project(root: Path, n_train: int, specs: dict) -> Path:
    make_project(root)
    make_competition(root, "c", "label", n_train=n_train)
    (root / "configs" / "sweep").mkdir(parents=True)
    for name, spec in specs.items():
        (root / "configs" / "sweep" / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def sweep_command(root: Path, name: str) -> list[str]:
    return [PY, str(REPO / "scripts" / "sweep.py"), "--root", str(root), "--comp", "c", "--sweep", name, "--cpus", "2"]


def results(root: Path, name: str) -> dict:
    return json.loads((root / "sweeps" / "c" / name / "results.json").read_text())


def done_on_disk(root: Path) -> set:
    """{(trial, fold)} of the folds trained and {(trial, None)} of the OOF predictions built."""
    folds = {(d.parents[1].name, int(d.name[4:])) for d in root.glob("models/c/*/*/fold*") if is_complete(d)}
    return folds | {(d.parent.name, None) for d in root.glob("oof/c/*/*") if is_complete(d)}


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """The grid killed (SIGKILL to its process group) once its first trial's OOF predictions exist, then rerun.
    Returns (root, what was done before the rerun, the rerun's process)."""
    root = project(tmp_path_factory.mktemp("sweep") / "grid", 24, {"grid": GRID})
    proc = subprocess.Popen(sweep_command(root, "grid"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while not list(root.glob("oof/c/*/*/manifest.json")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    stop_group(proc)  # the local Ray's processes go down with the driver's group: nothing is left running
    assert proc.returncode == -signal.SIGKILL, "the sweep ended before it could be killed"
    before = done_on_disk(root)
    rerun = run_script(root, "sweep.py", "c", extra=("--sweep", "grid", "--cpus", "2"))
    return root, before, rerun


def trial_names(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "configs" / "exp").glob("grid-*.yaml"))


def test_a_killed_grid_reruns_only_its_unfinished_trials(grid):
    root, before, rerun = grid
    names = trial_names(root)
    everything = {(n, k) for n in names for k in (0, 1, None)}
    finished = {n for n, k in before if k is None}
    assert len(names) == 4 and finished and finished != set(names), f"killed too late or too early: {before}"
    assert done_on_disk(root) == everything
    runs = results(root, "grid")["runs"]
    assert len(runs) == 2 and runs[0]["finished"] is None and runs[1]["finished"]
    ran = {(t["trial"], t["fold"]) for t in runs[1]["tasks"]}
    assert ran == everything - before  # exactly what was missing, nothing twice
    said = runs[1]["already_done"]
    assert {n for n, what in said.items() if what == "OOF predictions"} == finished
    for name in finished:
        assert f"sweep: {name}: up to date" in rerun.stderr
    for name, what in said.items():
        if what != "OOF predictions":
            assert what == f"folds {sorted(k for n, k in before if n == name and k is not None)}"
    assert {n: t["state"] for n, t in results(root, "grid")["trials"].items()} == dict.fromkeys(names, "complete")


def test_every_trials_folds_are_in_tensorboard_each_epoch_once(grid):
    """runtime.trackers' default in Ray's workers: each trial's folds under runs/c/<trial>/, the killed ones
    resumed into the same runs."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root = grid[0]
    folds = sorted(root.glob("models/c/grid-*/*/fold*"))
    assert len(folds) == 8
    for fold in folds:
        events = EventAccumulator(str(root / "runs" / "c" / fold.parents[1].name / fold.parent.name / fold.name))
        events.Reload()
        logged = [(e.step, e.value) for e in events.Scalars("train_loss")]
        log_csv = pd.read_csv(fold / "log.csv")
        assert [s for s, _ in logged] == log_csv["epoch"].tolist() == [1, 2]
        np.testing.assert_allclose([v for _, v in logged], log_csv["train_loss"], rtol=1e-6)


def labels_accuracy(root: Path, oof: np.ndarray) -> float:
    """Accuracy from the labels file and the classes in the competition's config, not from the pipeline."""
    classes = yaml.safe_load((root / "configs" / "c.yaml").read_text())["competition"]["classes"]
    truth = pd.read_csv(root / "input" / "c" / "train.csv")["label"].astype(str).to_numpy()
    return float(np.mean(np.array(classes)[oof.argmax(1)] == truth))


# The stages as `make oof` runs them (foldstack.pipeline: the scripts' own Context and stage functions), for several
# experiments in one process: one start-up instead of three a trial.
BY_HAND = ("import sys\nfrom foldstack import pipeline\n"
           "for name in sys.argv[2:]:\n"
           "    ctx = pipeline.context('c', name, root=sys.argv[1], download=True)\n"
           "    pipeline.run(ctx, ['folds', 'train', 'oof'])\n")


def test_each_trial_equals_its_experiment_run_by_hand(grid, tmp_path, monkeypatch):
    """Every trial's file, run by hand in another project (`make oof EXP=<trial>` for the first trial the kill
    left unfinished, the same stages through foldstack.pipeline for the others): the same models and prediction
    keys, and the same OOF and test predictions, exactly (the tasks' 1 thread = OMP_NUM_THREADS=1 here)."""
    root, before, _ = grid
    names = trial_names(root)
    spec = load_spec(root, "grid")[1]
    assert names == sorted(t.name for t in grid_trials("grid", spec, base_layer(root, spec)))
    hand = make_project(tmp_path / "hand")
    make_competition(hand, "c", "label", n_train=24)
    (hand / "configs" / "c.yaml").write_text((root / "configs" / "c.yaml").read_text())
    for name in names:
        text = (root / "configs" / "exp" / f"{name}.yaml").read_text()
        assert text.startswith("# Sweep trial of configs/sweep/grid.yaml")
        (hand / "configs" / "exp" / f"{name}.yaml").write_text(text)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    resumed = next(n for n in names if (n, None) not in before)
    run_make(hand, "folds", COMP="c", EXP=resumed)
    others = subprocess.Popen([PY, "-c", BY_HAND, str(hand), *(n for n in names if n != resumed)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_make(hand, "oof", COMP="c", EXP=resumed)
    output = others.communicate(timeout=600)[0]
    assert others.returncode == 0, output
    for name in names:
        [swept] = (root / "oof" / "c" / name).iterdir()
        [by_hand] = (hand / "oof" / "c" / name).iterdir()
        assert swept.name == by_hand.name and is_complete(swept)
        assert read_manifest(swept)["inputs"]["train"] == read_manifest(by_hand)["inputs"]["train"]
        for array in ("oof.npy", "test.npy", "folds.npy"):
            assert np.array_equal(np.load(swept / array), np.load(by_hand / array)), f"{name}: {array}"


def test_the_leaderboard_is_make_stacks_table_and_its_command_blends_the_best(grid):
    root, _, rerun = grid
    names = trial_names(root)
    board = pd.read_csv(root / "sweeps" / "c" / "grid" / "leaderboard.csv")
    assert sorted(board["level"]) == names and list(board["cv"]) == sorted(board["cv"], reverse=True)
    for row in board.to_dict("records"):
        [folder] = (root / "oof" / "c" / row["level"]).iterdir()
        assert row["cv"] == pytest.approx(labels_accuracy(root, np.load(folder / "oof.npy")), abs=1e-12)
        values = results(root, "grid")["trials"][row["level"]]["values"]
        assert {k: row[k] for k in values} == pytest.approx(values)  # the swept values beside each row
    best = list(board["level"][:2])
    assert f"best 2: {best[0]} (" in rerun.stdout and results(root, "grid")["best"] == best
    [command] = re.findall(r"^\s+(make stack .*)$", rerun.stdout, flags=re.M)
    assert command == f'make stack COMP=c EXP={best[0]} OVERRIDES="stack.experiments=[{",".join(best)}]"'
    stacked = run_make(root, "stack", COMP="c", EXP=best[0], OVERRIDES=f"stack.experiments=[{','.join(best)}]")
    assert "fold(s) up to date" in stacked.stderr and "predictions up to date" in stacked.stderr  # nothing retrained
    [stack] = (root / "stacks" / "c").iterdir()
    report = pd.read_csv(stack / "report.csv").set_index("level")
    for name in best:
        assert report.loc[name, "cv"] == pytest.approx(board.set_index("level").loc[name, "cv"], abs=1e-12)


def stop_group(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    """Signal a process group, then wait until none of it is left (Ray's processes included)."""
    os.killpg(proc.pid, sig)
    proc.wait()
    for _ in range(150):
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail(f"processes of group {proc.pid} are still running")


def test_trial_names_follow_the_spec_and_their_files_reproduce_the_overrides(tmp_path):
    root = project(tmp_path / "names", 24, {"grid": GRID})
    spec = load_spec(root, "grid")[1]
    trials = grid_trials("grid", spec, base_layer(root, spec))
    assert [t.name for t in trials] == [t.name for t in grid_trials("grid", spec, base_layer(root, spec))]
    assert len({t.name for t in trials}) == 4
    other = spec.model_copy(update={"overrides": [*spec.overrides, "train.seed=1"]})
    assert not {t.name for t in trials} & {t.name for t in grid_trials("grid", other, base_layer(root, other))}
    for t in trials:
        write_trial(root, "grid", spec, t)
        by_overrides = pipeline.context("c", overrides=[*spec.overrides, *(f"{k}={v}" for k, v in t.values.items())],
                                        root=root)
        assert pipeline.context("c", t.name, root=root).cfg == by_overrides.cfg
