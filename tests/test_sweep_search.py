"""`make sweep` of a 6-trial search on a Ray cluster started as on a real one, whose ASHA stops bad trials early and
records why (the cutoff recomputed from the other trials' logs), the rung book's cutoffs on hand-made results and
against Ray's ASHA decisions, a resumed search's first points, the spec's checks, and that nothing but
foldstack.sweep.runner and foldstack.sweep.search imports Ray or Optuna. The grid: test_sweep.py."""
import os
import shutil
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

from conftest import PY, REPO, TINY
from foldstack.artifacts import read_manifest
from foldstack.errors import PipelineError
from foldstack.sweep.rungs import Rungs
from foldstack.sweep.spec import load_spec
from test_sweep import project, results, stop_group, sweep_command

# 2 CPUs a trial on 2: one trial at a time, so ASHA's rungs fill in a fixed order (log loss: a continuous metric).
SEARCH = dict(overrides=[*TINY, "train.epochs=4", "competition.metric=log_loss"], objective="fold0",
              search=dict(trials=6, seed=0, space={"train.lr": {"loguniform": [1.0e-6, 3.0e-2]}},
                          asha=dict(grace_period=1, reduction_factor=2)),
              resources=dict(cpus=2), best=1)


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
