"""Versioned stage outputs: <stage dir>/<comp>/[<exp>/]<content hash>/ with a manifest.json written last.

A folder with a manifest is complete and never written again; a changed config or input gives a new hash and
so a new folder beside the old ones. Folders are built under a temporary name and renamed into place."""
import json
import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from . import __version__
from .errors import PipelineError
from .utils.io import atomic_write_json, remove_tree

STAGE_DIRS = {"folds": "folds", "train": "models", "predict": "oof", "stack": "stacks", "submit": "submissions",
              "lr_find": "lr_find", "pseudo": "pseudo", "cache": "cache"}
MANIFEST = "manifest.json"


def artifact_path(root: Path, stage: str, comp: str, key: str, exp: str | None = None) -> Path:
    parts = [STAGE_DIRS[stage], comp] + ([exp] if exp else []) + [key]
    return Path(root).joinpath(*parts)


def is_complete(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_manifest(path: Path) -> dict:
    try:
        return json.loads((Path(path) / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PipelineError(f"{Path(path) / MANIFEST}: unreadable manifest ({e.__class__.__name__})") from None


def code_version() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def write_manifest(path: Path, stage: str, key: str, config: dict, fold_key: str,
                   inputs: dict | None = None, metrics: dict | None = None, **extra) -> dict:
    manifest = dict(stage=stage, key=key, fold_key=fold_key, config=config, inputs=inputs or {},
                    metrics=metrics or {}, code_version=code_version(),
                    created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), created_ns=time.time_ns(), **extra)
    atomic_write_json(Path(path) / MANIFEST, manifest)
    return manifest


def input_ref(path: Path, root: Path) -> dict:
    m = read_manifest(path)
    return dict(path=str(Path(path).relative_to(root)), key=m["key"], fold_key=m["fold_key"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _remove_stale_staging(final: Path) -> None:
    """Temporary folders left by a killed run (kill -9 skips cleanup) of the same artifact."""
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            remove_tree(stale)


@contextmanager
def staging(final: Path):
    """Yield a temporary folder; on success it becomes `final` in one rename, on failure it is removed."""
    final = Path(final)
    if final.exists():
        raise PipelineError(f"refusing to overwrite existing artifact {final}")
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(final)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        yield tmp
        os.rename(tmp, final)
    except BaseException:
        remove_tree(tmp)
        raise


def latest(root: Path, stage: str, comp: str, exp: str | None = None, where=None) -> Path | None:
    """The most recently completed artifact of a stage (for an experiment) that passes `where`, or None."""
    folder = artifact_path(root, stage, comp, "x", exp).parent
    done = [p for p in folder.glob("*") if not p.name.startswith(".") and is_complete(p) and (where is None or where(p))]
    return max(done, key=lambda p: read_manifest(p).get("created_ns", 0), default=None)


def require_same_folds(refs: dict[str, str], what: str) -> str:
    """All artifacts must come from one fold split, else their OOF rows were scored by models that saw them."""
    keys = set(refs.values())
    if len(keys) > 1:
        detail = ", ".join(f"{name} (folds {k})" for name, k in refs.items())
        raise PipelineError(f"{what} built on different folds: {detail}; rebuild them on the same folds")
    return keys.pop()
