"""Versioned artifacts: unchanged rerun is a no-op, a changed config is a new version, folds must match."""
import json
import subprocess

import pytest

from foldstack.artifacts import require_same_folds, staging
from foldstack.errors import PipelineError

from conftest import make_competition, run_here


def versions(root, stage_dir="folds", comp="c"):
    return sorted(p.name for p in (root / stage_dir / comp).iterdir() if not p.name.startswith("."))


def test_unchanged_rerun_is_a_noop_and_changed_config_is_a_new_version(tmp_path):
    make_competition(tmp_path, "c")
    run_here(tmp_path, "01_folds.py", "c")
    [first] = versions(tmp_path)
    manifest = tmp_path / "folds" / "c" / first / "manifest.json"
    before = manifest.stat().st_mtime_ns, (manifest.parent / "folds.csv").read_bytes()
    proc = run_here(tmp_path, "01_folds.py", "c")
    assert "up to date" in proc.stderr
    assert (manifest.stat().st_mtime_ns, (manifest.parent / "folds.csv").read_bytes()) == before
    run_here(tmp_path, "01_folds.py", "c", "folds.seed=7")
    assert len(versions(tmp_path)) == 2 and first in versions(tmp_path)
    assert (manifest.stat().st_mtime_ns, (manifest.parent / "folds.csv").read_bytes()) == before
    data = json.loads(manifest.read_text())
    assert data["stage"] == "folds" and data["config"]["folds"]["seed"] == 42 and data["fold_key"] == first


def test_changed_data_is_a_new_version(tmp_path):
    folder = make_competition(tmp_path, "c")
    run_here(tmp_path, "01_folds.py", "c")
    lines = (folder / "train.csv").read_text().splitlines()
    (folder / "train.csv").write_text("\n".join(lines[:-1]) + "\n")
    run_here(tmp_path, "01_folds.py", "c")
    assert len(versions(tmp_path)) == 2


def test_staging_never_overwrites_and_cleans_up_on_failure(tmp_path):
    target = tmp_path / "stage" / "abc"
    with pytest.raises(RuntimeError):
        with staging(target) as tmp:
            (tmp / "half.csv").write_text("x")
            raise RuntimeError("killed")
    assert not target.exists() and not (tmp_path / "stage").exists()  # nor the folder it made for it
    with staging(target) as tmp:
        (tmp / "done.csv").write_text("x")
    with pytest.raises(PipelineError, match="refusing to overwrite"):
        with staging(target):
            pass
    assert (target / "done.csv").read_text() == "x"


def test_staging_removes_what_a_killed_run_left_behind(tmp_path):
    target = tmp_path / "stage" / "abc"
    dead = _dead_pid()
    left = target.parent / f".abc.tmp-{dead}"
    (left / "sub").mkdir(parents=True)
    with staging(target) as tmp:
        (tmp / "x").write_text("x")
    assert not left.exists() and sorted(p.name for p in target.parent.iterdir()) == ["abc"]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_fold_mismatch_is_refused():
    assert require_same_folds({"a": "k1", "b": "k1"}, "stack inputs") == "k1"
    with pytest.raises(PipelineError, match=r"different folds: a \(folds k1\), b \(folds k2\)"):
        require_same_folds({"a": "k1", "b": "k2"}, "stack inputs")
