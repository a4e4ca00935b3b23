"""`make sweep` on a local Ray with 2 CPUs (scripts/sweep.py in a subprocess, as make runs it): a 4-trial grid
killed after its first trial and resumed (only what was unfinished runs; every trial equals its experiment run by
hand with `make oof`, bit for bit; the leaderboard and its `make stack` command), a 6-trial search whose ASHA
stops bad trials early and records why (the cutoff recomputed from the other trials' logs), the rung book's
cutoffs on hand-made results and against Ray's ASHA decisions, the spec's checks, and that nothing but
foldstack.sweep.runner and foldstack.sweep.search imports Ray or Optuna."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import PY, REPO, TINY, make_competition, make_project, run_make, run_script
from foldstack import pipeline
from foldstack.artifacts import is_complete, read_manifest
from foldstack.errors import PipelineError
from foldstack.sweep.rungs import Rungs
from foldstack.sweep.spec import load_spec
from foldstack.sweep.trials import base_layer, grid_trials, write_trial

# 1 CPU a task on 2: two folds at once, each with 1 torch thread (by hand: OMP_NUM_THREADS=1, the same floats).
GRID = dict(overrides=[*TINY, "train.epochs=2"], grid={"train.lr": [0.001, 0.01], "data.batch_size": [4, 8]}, best=2)
# 2 CPUs a trial on 2: one trial at a time, so ASHA's rungs fill in a fixed order (log loss: a continuous metric).
SEARCH = dict(overrides=[*TINY, "train.epochs=4", "competition.metric=log_loss"], objective="fold0",
              search=dict(trials=6, seed=0, space={"train.lr": {"loguniform": [1.0e-6, 3.0e-2]}},
                          asha=dict(grace_period=1, reduction_factor=2)),
              resources=dict(cpus=2), best=1)


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


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Ray cluster of one node started as on a real one (`ray start --head`), 2 CPUs; killed with its group."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("ray") / "head.log"
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # its address file too: never /tmp/ray's (short: socket paths)
    head = subprocess.Popen([str(Path(PY).parent / "ray"), "start", "--head", f"--port={port}", "--num-cpus=2",
                             "--num-gpus=0", "--include-dashboard=false", "--object-store-memory=100000000",
                             "--disable-usage-stats", f"--temp-dir={temp}", "--block"], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 120
    while "Ray runtime started" not in log.read_text() and head.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert head.poll() is None and "Ray runtime started" in log.read_text(), log.read_text()
    yield f"127.0.0.1:{port}"
    stop_group(head)
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def search(tmp_path_factory, cluster):
    """The search on the cluster (SWEEP_ADDRESS): workers the driver did not start import the same foldstack."""
    root = project(tmp_path_factory.mktemp("sweep") / "search", 48, {"search": SEARCH})
    proc = subprocess.run(sweep_command(root, "search")[:-2], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "SWEEP_ADDRESS": cluster})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"sweep: Ray cluster at {cluster}: 2 CPUs" in proc.stderr
    return root, proc


def fold0_log(root: Path, name: str) -> pd.DataFrame:
    """Fold 0's log.csv, finished (fold0/) or not (.fold0.partial/)."""
    [log] = [log for folder in ("fold0", ".fold0.partial") for log in root.glob(f"models/c/{name}/*/{folder}/log.csv")]
    return pd.read_csv(log)


def test_asha_stops_bad_trials_early_and_says_why(search):
    root, proc = search
    record = results(root, "search")
    trials, [run] = record["trials"], record["runs"]
    assert len(trials) == 6 and run["searched"] == list(dict.fromkeys(run["searched"])) and len(run["searched"]) == 6
    stopped = {n: t["stopped"] for n, t in trials.items() if t["state"] == "stopped"}
    assert stopped, f"ASHA stopped no trial: {trials}"
    for name, why in stopped.items():
        assert why["epoch"] < 4 and not list(root.glob(f"models/c/{name}/*/fold0"))  # unfinished, never short
        log = fold0_log(root, name)  # in .fold0.partial/, resumable
        assert len(log) == why["epoch"] and log["log_loss"].iloc[-1] == pytest.approx(why["metric"], abs=1e-12)
        # the rung's cutoff: the median (reduction factor 2) of the log losses of the trials before it at that epoch
        earlier = run["searched"][:run["searched"].index(name)]
        at_rung = [fold0_log(root, n)["log_loss"].iloc[int(why["rung"]) - 1] for n in earlier
                   if len(fold0_log(root, n)) >= why["rung"]]
        assert why["cutoff"] == pytest.approx(float(np.percentile(at_rung, 50)), abs=1e-9)
        assert why["metric"] > why["cutoff"]  # log loss: higher is worse
        assert why["why"].startswith(f"stopped by ASHA at epoch {why['epoch']}: log_loss ")
        assert f"sweep: {name}: {why['why']}" in proc.stderr and why["why"] in proc.stdout  # the fold-0 table
    for name in set(trials) - set(stopped):
        assert len(fold0_log(root, name)) == 4 and list(root.glob(f"models/c/{name}/*/fold0/manifest.json"))
    # objective fold0, best 1: only the best trial by fold 0 trains its other fold and is predicted
    scores = {n: read_manifest(next(root.glob(f"models/c/{n}/*/fold0")))["metrics"]["last"]
              for n in set(trials) - set(stopped)}
    best = min(scores, key=scores.get)
    assert {p.name for p in (root / "oof" / "c").iterdir()} == {best} and record["best"] == [best]
    assert len(list(root.glob("models/c/*/*/fold1"))) == 1


def test_a_rungs_cutoff_is_the_quantile_of_what_it_held_before():
    """Losses (min): at reduction factor 3 a result must be in the best third of those entered at its rung before
    it; a second result at the same rung is not judged again, the next rung is."""
    rungs = Rungs("log_loss", "min", grace_period=1, max_t=10, reduction_factor=3)
    assert list(rungs.entered) == [9, 3, 1]  # as Ray counts them: 1 x 3^k up to max_t
    losses = {"a": 0.8, "b": 0.2, "c": 0.6, "d": 0.4}
    assert [rungs.enter(t, {"epoch": 1, "log_loss": v}) for t, v in losses.items()] == [
        (1, None), (1, 0.8), (1, pytest.approx(0.4)), (1, pytest.approx(0.2 + 0.4 * 2 / 3))]
    # the 1/3 quantile of the losses held (linear between neighbours): {0.2, 0.8} -> a third of the way from 0.2
    # to 0.8; {0.2, 0.6, 0.8} -> at position 2/3 of 0..2, two thirds of the way from 0.2 to 0.6
    rung, cutoff = rungs.enter("e", {"epoch": 1, "log_loss": 0.45})
    assert cutoff == pytest.approx(0.4) and rungs.behind(0.45, cutoff) and not rungs.behind(0.35, cutoff)
    assert rungs.enter("e", {"epoch": 2, "log_loss": 0.1}) == (None, None)  # no new rung at epoch 2
    assert rungs.enter("e", {"epoch": 3, "log_loss": 0.3}) == (3, None)
    why = rungs.stop_reason({"epoch": 1, "log_loss": 0.45}, rung, cutoff)
    assert why == dict(epoch=1, metric=0.45, rung=1, cutoff=pytest.approx(0.4),
                       why="stopped by ASHA at epoch 1: log_loss 0.45 above the epoch-1 rung's cutoff 0.4")
    accuracy = Rungs("accuracy", "max", grace_period=1, max_t=4, reduction_factor=2)
    for t, v in {"a": 0.9, "b": 0.5, "c": 0.6}.items():
        accuracy.enter(t, {"epoch": 1, "accuracy": v})
    assert accuracy.cutoff(1) == pytest.approx(0.6) and accuracy.behind(0.55, 0.6) and not accuracy.behind(0.7, 0.6)


def test_the_reasons_recorded_agree_with_rays_asha():
    """RecordingASHA (Ray's ASHAScheduler deciding, the rung book explaining), fed interleaved results through Tune's
    public scheduler calls: every stop is explained by a cutoff equal to the median (reduction factor 2) of the
    values entered at that rung before, and no result that continued was behind its rung's cutoff."""
    from foldstack.sweep.search import RecordingASHA

    stops = []
    asha = RecordingASHA(lambda config, why: stops.append((config["name"], why)),
                         Rungs("log_loss", "min", 1, 8, 2), max_t=8, grace_period=1, reduction_factor=2)
    assert asha.set_search_properties("log_loss", "min")
    rng = np.random.default_rng(0)
    trials = {f"t{i}": SimpleNamespace(trial_id=f"t{i}", config={"name": f"t{i}"}) for i in range(10)}
    for trial in trials.values():
        asha.on_trial_add(None, trial)
    at_rung, running, stopped = {1: [], 2: [], 4: [], 8: []}, dict.fromkeys(trials, 0), set()
    while running:
        name = rng.choice(sorted(running))
        running[name] += 1
        epoch, loss = running[name], float(rng.uniform(0.1, 1.0))
        before = list(at_rung.get(epoch, []))
        action = asha.on_trial_result(None, trials[name], {"epoch": epoch, "log_loss": loss})
        if epoch in at_rung:
            at_rung[epoch].append(loss)
        if action == asha.STOP:
            assert stops[-1][0] == name and stops[-1][1]["cutoff"] == pytest.approx(np.percentile(before, 50))
            assert stops[-1][1]["rung"] == epoch and loss > stops[-1][1]["cutoff"]
            stopped.add(name)
        elif epoch in at_rung and before:
            assert loss <= np.percentile(before, 50)
        if action == asha.STOP or epoch == 8:
            asha.on_trial_complete(None, trials[name], {"epoch": epoch, "log_loss": loss})
            del running[name]
    assert len(stops) == len(stopped) >= 3


def test_a_resumed_search_reruns_the_interrupted_points_before_new_draws():
    from foldstack.sweep.search import optuna_space, resumed_searcher
    from foldstack.sweep.spec import Search

    space = optuna_space(Search.model_validate(SEARCH["search"]).space)
    evaluated = [({"train.lr": 1e-3}, 0.5), ({"train.lr": 1e-2}, 0.9)]
    pending = [{"train.lr": 2e-4}, {"train.lr": 5e-5}]
    searcher = resumed_searcher(space, "log_loss", "min", 2, evaluated, pending)
    assert [searcher.suggest("t0"), searcher.suggest("t1")] == pending
    drawn = searcher.suggest("t2")["train.lr"]
    assert 1e-6 <= drawn <= 3e-2 and drawn not in (1e-3, 1e-2, 2e-4, 5e-5)


def test_the_spec_is_checked_before_anything_runs(tmp_path):
    root = project(tmp_path / "bad", 24, {"typo": dict(grid={"train.lrr": [0.1]}),
                                          "split": dict(grid={"folds.n_splits": [2, 3]}),
                                          "both": dict(grid={"train.lr": [0.1]}, search=SEARCH["search"])})
    proc = subprocess.run(sweep_command(root, "typo"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == ("error: config error in configs/sweep/typo.yaml: grid: "
                                                    "train.lrr: unknown key (got 0.1)")
    assert not list((root / "configs" / "exp").iterdir()) and not (root / "sweeps").exists()
    with pytest.raises(PipelineError, match=r"configs/sweep/split.yaml: folds.n_splits: trials must share the split"):
        load_spec(root, "split")
    with pytest.raises(PipelineError, match=r"configs/sweep/both.yaml: give either a grid or a search, not both"):
        load_spec(root, "both")
    with pytest.raises(PipelineError, match=r"sweep spec not found: .*missing.yaml \(sweeps: both, split, typo\)"):
        load_spec(root, "missing")


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


def test_only_the_sweep_runner_and_search_import_ray_and_optuna():
    code = ("import importlib, pkgutil, sys, foldstack\n"
            "for m in pkgutil.walk_packages(foldstack.__path__, 'foldstack.'):\n"
            "    if m.name not in ('foldstack.sweep.runner', 'foldstack.sweep.search'):\n"
            "        importlib.import_module(m.name)\n"
            "from foldstack.stages import sweep\n"
            "print(sorted({n.split('.')[0] for n in sys.modules} & {'ray', 'optuna'}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
