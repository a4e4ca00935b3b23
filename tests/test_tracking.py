"""runtime.trackers: what each tracker logged, read back with its own reader (TensorBoard's event reader, an MLflow
tracking server's client, `wandb leet inspect` on W&B's offline run file) and compared with the fold's log.csv, the
OOF manifest and the stack's report.csv; a tracker that hangs or fails is switched off; a killed fold resumes into
the same runs, each epoch once; tracking changes no artifact."""
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import (PY, REPO, TINY, distinct_colours, make_all_here, make_competition, make_project,
                      needs_browser, run_here, screenshot)
from foldstack.artifacts import read_manifest
from foldstack.sample import make_digits
from foldstack.tracking import flat_config
from foldstack.tracking.backends import MLflow, RunInfo
from foldstack.tracking.guard import Guarded

EPOCHS = 2
COLUMNS = ["train_loss", "valid_loss", "accuracy", "lr"]  # log.csv's, for the 3-class fixture (metric accuracy)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        assert proc.poll() is None, f"the server exited: {proc.stderr.read().decode()[-2000:]}"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {seconds}s")


def fold_logs(root: Path) -> dict[str, tuple[str, pd.DataFrame]]:
    """{fold<k>: (its models key, its log.csv)} of the baseline's one trained version."""
    (models,) = (root / "models" / "c" / "baseline").iterdir()
    return {f.name: (models.name, pd.read_csv(f / "log.csv")) for f in sorted(models.glob("fold*"))}


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def wandb_records(run_dir: Path) -> list[dict]:
    """Every record of the fold's W&B offline run file(s), through W&B's own reader."""
    records = []
    for file in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        out = subprocess.run([str(Path(PY).parent / "wandb"), "leet", "inspect", "--json", str(file)],
                             capture_output=True, text=True, timeout=120, check=True).stdout
        records += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return records


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 with a SQLite backend: its URI."""
    home, port = tmp_path_factory.mktemp("mlflow"), free_port()
    server = subprocess.Popen([str(Path(PY).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
                               "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
                               "--artifacts-destination", str(home / "artifacts"), "--workers", "1"],
                              cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, mlflow_server):
    """The tiny 3-class competition through `make all`'s stages with all three trackers (MLflow: the server; W&B:
    offline, no API key), and the same without any tracker."""
    roots = {}
    for name, trackers in (("tracked", "[tensorboard, mlflow, wandb]"), ("untracked", "[]")):
        root = make_project(tmp_path_factory.mktemp(name) / "project")
        make_competition(root, "c", "label")
        env = {k: os.environ.pop(k) for k in ("WANDB_API_KEY", "WANDB_MODE") if k in os.environ}
        home, os.environ["HOME"] = os.environ.get("HOME"), str(root)  # no ~/.netrc key: offline
        try:
            runs = make_all_here(root, "c", f"train.epochs={EPOCHS}", f"runtime.trackers={trackers}",
                                 f"runtime.mlflow_uri={mlflow_server}")
        finally:
            os.environ.update(env)
            if home is not None:
                os.environ["HOME"] = home
        assert all(r.returncode == 0 for r in runs.values()), {s: r.stderr[-800:] for s, r in runs.items()}
        roots[name] = root
    return roots


@pytest.mark.slow
def test_tensorboard_holds_each_folds_log_csv_and_the_oof_and_stack_tables(tracked):
    root = tracked["tracked"]
    for fold, (key, log_csv) in fold_logs(root).items():
        logged = scalars(root / "runs" / "c" / "baseline" / key / fold)
        for column in COLUMNS:
            assert [s for s, _ in logged[column]] == list(range(1, EPOCHS + 1))
            np.testing.assert_allclose([v for _, v in logged[column]], log_csv[column], rtol=1e-6)
        assert all(v > 0 for _, v in logged["images_per_s"])
        assert logged["hparam/best"][0][1] == pytest.approx(log_csv["accuracy"].max(), abs=1e-6)
    (oof,) = (root / "oof" / "c" / "baseline").iterdir()
    oof_logged = scalars(root / "runs" / "c" / "baseline" / oof.name / "oof")
    assert oof_logged["accuracy"] == [(0, pytest.approx(read_manifest(oof)["metrics"]["accuracy"], abs=1e-6))]
    (stack,) = (root / "stacks" / "c").iterdir()
    report = pd.read_csv(stack / "report.csv")
    stack_logged = scalars(root / "runs" / "c" / "baseline" / stack.name / "stack")
    assert {tag: v for tag, [(_, v)] in stack_logged.items() if not tag.startswith("hparam/")} == {
        level: pytest.approx(cv, abs=1e-6) for level, cv in zip(report["level"], report["cv"])}


@pytest.mark.slow
def test_wandb_offline_run_holds_each_folds_log_csv(tracked):
    root = tracked["tracked"]
    for fold, (key, log_csv) in fold_logs(root).items():
        records = wandb_records(root / "runs" / "c" / "baseline" / key / fold)
        (run,) = [r["run"] for r in records if r["type"] == "run"]
        assert (run["project"], run["run_group"], run["display_name"]) == ("c", "baseline", f"baseline {fold}")
        history = [r["history"] for r in records if r["type"] == "history"]
        assert [h["step"]["num"] for h in history] == list(range(1, EPOCHS + 1))
        for column in COLUMNS:
            np.testing.assert_allclose([h["item"][column] for h in history], log_csv[column], rtol=1e-6)
        assert run["config"]["update"]["train.epochs"] == EPOCHS


@pytest.mark.slow
def test_tracking_changes_no_artifact(tracked):
    """Same folders (keys) and the same bytes of every artifact file, tracked or not."""
    def files(root):  # the manifests and report.csv's images_per_s hold timings: the rest must be identical
        found = {p.relative_to(root): p.read_bytes() for d in ("folds", "oof", "stacks") for p in (root / d).rglob("*")
                 if p.is_file() and p.name not in ("manifest.json", "report.csv")}
        (report,) = (root / "stacks").rglob("report.csv")
        return found | {"report": pd.read_csv(report).drop(columns="images_per_s").to_csv(),
                        "submission": (root / "submission.csv").read_bytes()}

    a, b = (files(tracked[n]) for n in ("tracked", "untracked"))
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    assert not (tracked["untracked"] / "runs").exists()
    ran = run_here(tracked["tracked"], "02_train.py", "c", *TINY, f"train.epochs={EPOCHS}", "runtime.trackers=[]")
    assert "up to date" in ran.stderr  # the untracked config names the same version


@pytest.mark.slow
def test_mlflow_tracking_server_holds_every_run(tracked, mlflow_server, tmp_path):
    from mlflow import MlflowClient

    root = tracked["tracked"]
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("c")
    found = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(found) == {"baseline fold0", "baseline fold1", "baseline oof", "baseline stack"}
    for fold, (key, log_csv) in fold_logs(root).items():
        run = found[f"baseline {fold}"]
        assert run.info.status == "FINISHED" and run.data.tags["artifact_key"] == key
        assert run.data.tags["models"] == f"models/c/baseline/{key}/{fold}"
        assert run.data.params["train.epochs"] == str(EPOCHS) and run.data.params["model.name"] == "test_resnet"
        for column in COLUMNS:
            history = client.get_metric_history(run.info.run_id, column)
            assert [m.step for m in history] == list(range(1, EPOCHS + 1))
            np.testing.assert_allclose([m.value for m in history], log_csv[column], rtol=1e-6)
        assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"curves.png"}
    (stack,) = (root / "stacks" / "c").iterdir()
    report = pd.read_csv(stack / "report.csv")
    stack_run = found["baseline stack"]
    named = {level.replace("(", "_").replace(")", "_"): cv for level, cv in zip(report["level"], report["cv"])}
    assert stack_run.data.metrics == pytest.approx(named, abs=1e-6)  # MLflow refuses ( ) in a metric name
    table = client.download_artifacts(stack_run.info.run_id, "cv.csv", str(tmp_path))
    assert pd.read_csv(table)["level"].tolist() == report["level"].tolist()
    assert not (root / "mlruns").exists()  # the server got everything


@pytest.mark.slow
def test_killed_fold_resumes_into_the_same_runs_each_epoch_once(tmp_path):
    """kill -9 in the middle of training, then the rerun: one TensorBoard run and one MLflow run per fold, with
    epochs 1..E once each, even where the kill fell after a tracker logged an epoch and before the run's state
    said so (simulated: the state set one epoch back)."""
    from mlflow import MlflowClient

    epochs = 6
    root = make_project(tmp_path / "project")
    make_competition(root, "c", "label", n_train=64)
    settings = [*TINY, f"train.epochs={epochs}", "runtime.trackers=[tensorboard, mlflow]", "runtime.progress=false"]
    run_here(root, "01_folds.py", "c", *settings)
    cmd = [PY, str(REPO / "scripts" / "02_train.py"), "--root", str(root), "--comp", "c", "--set", *settings]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    states = root / "runs" / "c" / "baseline"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:  # kill once fold 0 has logged 2 epochs
        state = next(states.glob("*/fold0/tracking.json"), None)
        if state is not None and json.loads(state.read_text() or "{}").get("logged", 0) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = {p.parent.name: json.loads(p.read_text()) for p in states.glob("*/fold*/tracking.json")}
    assert 2 <= killed["fold0"]["logged"] < epochs, killed
    behind = killed["fold0"] | {"logged": killed["fold0"]["logged"] - 1}
    next(states.glob("*/fold0/tracking.json")).write_text(json.dumps(behind))

    assert run_here(root, "02_train.py", "c", *settings).returncode == 0
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    found = client.search_runs([client.get_experiment_by_name("c").experiment_id])
    assert sorted(r.info.run_name for r in found) == ["baseline fold0", "baseline fold1"]
    for fold, (key, log_csv) in fold_logs(root).items():
        state = json.loads((states / key / fold / "tracking.json").read_text())
        if fold in killed:
            assert state["mlflow"] == killed[fold]["mlflow"]  # the same run, resumed
        run_id = state["mlflow"]["run_id"]
        history = client.get_metric_history(run_id, "train_loss")
        assert [m.step for m in history] == list(range(1, epochs + 1))
        np.testing.assert_allclose([m.value for m in history], log_csv["train_loss"], rtol=1e-6)
        logged = scalars(states / key / fold)["train_loss"]
        assert [s for s, _ in logged] == list(range(1, epochs + 1))
        np.testing.assert_allclose([v for _, v in logged], log_csv["train_loss"], rtol=1e-6)


@needs_browser
@pytest.mark.slow
def test_tensorboard_shows_the_fold_curves_in_chromium(tmp_path):
    """`make tensorboard`'s server on a digits run's event files, rendered by headless Chromium."""
    root = make_project(tmp_path / "project")
    train = make_digits(root / "input" / "digits") / "train.csv"
    pd.read_csv(train).head(100).to_csv(train, index=False)  # 100 of its 1,437 train rows: curves in seconds
    runs = make_all_here(root, "digits", f"train.epochs={EPOCHS}")
    assert all(r.returncode == 0 for r in runs.values())
    port = free_port()
    server = subprocess.Popen([PY, "-m", "tensorboard.main", "--logdir", str(root / "runs" / "digits"), "--host",
                               "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(f"http://127.0.0.1:{port}/data/runs", server)
        image = screenshot(f"http://127.0.0.1:{port}/?darkMode=false#timeseries", tmp_path / "tensorboard.png",
                           1000, tmp_path / "profile", "--virtual-time-budget=20000")
    finally:
        server.terminate()
        server.wait(30)
    assert distinct_colours(image) > 100 and image.std() > 20  # charts and text, not a blank page
    keep = os.environ.get("REPORT_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / "tensorboard.png").write_bytes((tmp_path / "tensorboard.png").read_bytes())


class Hangs:
    def open(self, *args):
        time.sleep(30)


class Fails:
    def open(self, *args):
        raise ConnectionError("server said no\nsecond line")


@pytest.mark.parametrize("backend, why", [(Hangs, "open took longer than runtime.tracker_timeout=0.3s"),
                                          (Fails, "open failed: ConnectionError: server said no")])
def test_a_tracker_that_hangs_or_fails_is_reported_once_and_switched_off(backend, why, caplog):
    guarded = Guarded("x", backend(), timeout=0.3)
    t0 = time.time()
    with caplog.at_level(logging.WARNING, logger="foldstack"):
        assert guarded.call("open") is None and guarded.call("open") is None
    assert time.time() - t0 < 2 and not guarded.on
    assert [r.getMessage() for r in caplog.records] == [
        f"tracker x: {why}: switched off for this run (training and its artifacts go on)"]


def test_a_finished_runs_tracker_thread_ends():
    class Echo:
        def open(self, *args):
            return args

    guarded = Guarded("echo", Echo(), timeout=5)
    assert guarded.call("open", 1, 2) == (1, 2)
    (thread,) = [t for t in threading.enumerate() if t.name == "tracker-echo"]
    guarded.stop()
    thread.join(5)
    assert not thread.is_alive()


def test_mlflow_against_a_server_that_never_answers_is_switched_off(tmp_path, caplog):
    """The real MLflow client against a socket that accepts and never replies: the guard gives up on time."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        info = RunInfo(root=tmp_path, comp="c", exp="baseline", name="fold0", key="k", dir=tmp_path / "run",
                       mlflow_uri=f"http://127.0.0.1:{silent.getsockname()[1]}")
        guarded = Guarded("mlflow", MLflow(), timeout=1.0)
        t0 = time.time()
        with caplog.at_level(logging.WARNING, logger="foldstack"):
            assert guarded.call("open", info, None, 0) is None
        assert time.time() - t0 < 5 and not guarded.on
    assert "tracker mlflow: open took longer than runtime.tracker_timeout=1s" in caplog.text
    assert not (tmp_path / "mlruns").exists()


def test_runtime_is_outside_every_artifact_key_and_the_config_is_flattened():
    from foldstack.config.loading import sections
    from foldstack.config.schema import Config
    from foldstack.lineage import TRAIN_SECTIONS
    from foldstack.utils.io import stable_hash

    a = Config()
    b = Config.model_validate({"runtime": {"trackers": ["mlflow", "wandb"], "mlflow_uri": "http://x:5000"}})
    assert stable_hash(sections(a, TRAIN_SECTIONS)) == stable_hash(sections(b, TRAIN_SECTIONS))
    flat = flat_config(b)
    assert flat["runtime.trackers"] == ["mlflow", "wandb"] and flat["train.lr"] == b.train.lr
    assert flat["data.mean"] == list(b.data.mean) and not any(isinstance(v, dict) and v for v in flat.values())


def test_a_missing_tracker_outside_the_repository_names_the_extra_to_install(tmp_path, monkeypatch):
    from foldstack.errors import PipelineError
    from foldstack.tracking import install

    install.ensure_extra("mlflow", "mlflow")  # installed (the test extra): nothing to do, no pip run
    monkeypatch.setattr(install, "REPO", tmp_path)  # foldstack installed from a wheel: no pyproject.toml to use
    with pytest.raises(PipelineError, match=r"^runtime.trackers names wandb, which is not installed: pip install "
                                            r"'foldstack\[wandb\]'$"):
        install.ensure_extra("wandb", "no_such_module_here")
