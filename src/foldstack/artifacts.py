"""Versioned stage outputs: <stage dir>/<comp>/[<exp>/]<content hash>/ with a manifest.json written last.

A folder with a manifest is complete and never written again; a changed config or input gives a new hash, so a
new folder. Folders are built under a hidden (dot) name and renamed into place (`staging`; `resumable_staging`
for work that resumes after a kill); hidden names are never read as artifacts and go once their process dies."""
import errno
import fcntl
import json
import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from . import __version__
from .errors import PipelineError
from .utils.io import (atomic_write_json, remove_dead_staging, remove_tree, reporting_write_errors, staging_name,
                       write_error)

# Every folder the pipeline writes under the project root, by the stage (or tool) that writes it.
STAGE_DIRS = {"folds": "folds", "train": "models", "predict": "oof", "stack": "stacks", "submit": "submissions",
              "lr_find": "lr_find", "pseudo": "pseudo", "cache": "cache", "export": "export", "bundle": "bundle",
              "report": "reports", "predict_images": "predictions", "summary": "summary", "audit": "audit",
              "sweep": "sweeps", "weights": "weights"}
MANIFEST = "manifest.json"
# The artifact format: in every manifest and, through the folds' key that every other key hashes, in every key.
# Bump it when what a folder holds changes under an unchanged config (2: the fitted level 2 in the stack folder,
# sections hashed whole, one staging protocol).
FORMAT = 2


def stage_root(root: Path, stage: str, *parts: str) -> Path:
    """<root>/<the stage's folder>/<parts>: where a stage (or tool) writes."""
    return Path(root, STAGE_DIRS[stage], *parts)


def artifact_path(root: Path, stage: str, comp: str, key: str, exp: str | None = None) -> Path:
    return stage_root(root, stage, comp, *([exp] if exp else []), key)


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
    manifest = dict(stage=stage, key=key, format=FORMAT, fold_key=fold_key, config=config, inputs=inputs or {},
                    metrics=metrics or {}, code_version=code_version(),
                    created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), created_ns=time.time_ns(), **extra)
    atomic_write_json(Path(path) / MANIFEST, manifest)
    return manifest


def input_ref(path: Path, root: Path) -> dict:
    m = read_manifest(path)
    return dict(path=str(Path(path).relative_to(root)), key=m["key"], fold_key=m["fold_key"])


def _reraise_as_write_error(e: BaseException, path: Path):
    """A full disk or read-only folder met while building `path`: one line naming the file (or the artifact).
    "Permission denied" on a file elsewhere is an input the stage could not read: left as it is."""
    filename = getattr(e, "filename", None)
    if (isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EPERM) and filename
            and Path(path).parent not in Path(filename).parents):
        return
    err = write_error(e, filename or path)
    if err is not None:
        raise err from None


@contextmanager
def staging(final: Path):
    """Yield a temporary folder; on success it becomes `final` in one rename, on failure it is removed."""
    final = Path(final)
    if final.exists():
        raise PipelineError(f"refusing to overwrite existing artifact {final}")
    with reporting_write_errors(final):
        created = _make_dirs(final.parent)
        remove_dead_staging(final.parent, final.name)
        tmp = final.parent / staging_name(final.name)
        tmp.mkdir()
    try:
        yield tmp
        os.rename(tmp, final)
    except BaseException as e:
        remove_tree(tmp)
        _remove_if_empty(reversed(created))  # a failed first run leaves no empty <stage>/<comp>/ either
        _reraise_as_write_error(e, final)
        raise


def partial_path(final: Path) -> Path:
    """Where `resumable_staging` builds `final`: a hidden folder beside it, kept across runs until it is done."""
    final = Path(final)
    return final.parent / f".{final.name}.partial"


def _make_dirs(folder: Path) -> list[Path]:
    """mkdir -p, returning the folders it created (outermost first)."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
    return list(reversed(missing))


def _remove_if_empty(folders) -> None:
    for d in folders:
        try:
            os.rmdir(d)
        except OSError:  # not empty (another fold, another process) or gone already
            return


def _enter_partial(final: Path, work: Path, main: bool) -> list[Path]:
    """Make `work` in final's parent; a missing parent is built hidden and renamed in already holding it, never
    empty. Returns the folders created above it. Safe for several processes at once (each step is atomic)."""
    parent, created = final.parent, []
    for _ in range(10):
        if parent.is_dir():
            try:
                work.mkdir(exist_ok=True)
                return created
            except FileNotFoundError:  # the parent was just removed by a failing process: make it again
                continue
        created = _make_dirs(parent.parent)
        if main:  # (another machine's rank would judge pids of its own)
            remove_dead_staging(parent.parent, parent.name)
        tmp = parent.parent / staging_name(parent.name)
        (tmp / work.name).mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp, parent)
            return created
        except OSError:  # another process made the parent first: use it
            remove_tree(tmp)
    raise PipelineError(f"cannot create {work}: its folder keeps disappearing")


@contextmanager
def resumable_staging(final: Path, main: bool = True, resumable=lambda work: any(Path(work).iterdir())):
    """Yield the hidden work folder `.<name>.partial` beside `final`, for work that resumes after a kill (a
    training fold); a killed run's folder is picked up by the next one. When the body returns (having written the
    manifest) it becomes `final` in one rename. On an error it stays if `resumable(work)`, else it goes, with the
    folders made for it if left empty: a failed run leaves nothing visible.

    Under torchrun every rank enters the same folder (`main=False` on all ranks but 0); only the main process
    locks it (a second process building the same artifact is refused), cleans up and renames."""
    final = Path(final)
    if is_complete(final):
        raise PipelineError(f"refusing to overwrite existing artifact {final}")
    work = partial_path(final)
    with reporting_write_errors(work):
        created = _enter_partial(final, work, main)
    lock = _lock(work, final) if main else None  # refused: the other process's folder is left alone
    try:
        if main:
            remove_dead_staging(work)  # a killed writer's half files
        yield work
        if main:
            if not is_complete(work):
                raise PipelineError(f"{work}: no {MANIFEST} written, not renaming it to {final.name}")
            remove_dead_staging(work)  # what a killed writer (a DataLoader worker, say) left since
            (work / LOCK_FILE).unlink()  # still held (the descriptor): no process can take it before the rename
            with reporting_write_errors(final):
                os.rename(work, final)
    except BaseException as e:
        if main and work.is_dir() and not resumable(work):
            remove_tree(work)
            _remove_if_empty([final.parent, *reversed(created)])
        _reraise_as_write_error(e, work)
        raise
    finally:
        if lock is not None:
            os.close(lock)


LOCK_FILE = ".lock"


def _lock(work: Path, final: Path) -> int:
    """An exclusive lock on the work folder for as long as the returned descriptor is open. A POSIX record lock
    on a file in it: the kernel drops it when this process dies (kill -9 included) and, unlike flock, forked
    DataLoader workers do not inherit it, so orphaned workers of a killed run never block the rerun."""
    fd = os.open(work / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno not in (errno.EACCES, errno.EAGAIN):
            raise
        raise PipelineError(f"{work} is in use: another process is building {final.name} of {final.parent}") from None
    return fd


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
