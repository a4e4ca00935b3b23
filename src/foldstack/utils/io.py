"""Atomic writes, content hashes and CSV reading with one-line errors."""
import errno
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import PipelineError


def stable_hash(obj, length: int = 12) -> str:
    """Hash of a JSON-able object, independent of dict order."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


# A write the file system refused: one line naming the file instead of a traceback (a full disk mid-epoch).
WRITE_ERRORS = {errno.ENOSPC: "no space left on device (disk full)",
                errno.EFBIG: "file too large (disk full, or over the file-size limit)",
                errno.EDQUOT: "disk quota exceeded (disk full for this user)",
                errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                errno.EPERM: "operation not permitted"}


def write_error(e: BaseException, path) -> PipelineError | None:
    """The one-line PipelineError for an OSError that means "cannot write here" (full disk, file-size limit,
    quota, read-only or forbidden folder), naming `path`; None for any other error."""
    if not isinstance(e, OSError) or e.errno not in WRITE_ERRORS:
        return None
    return PipelineError(f"cannot write {path}: {WRITE_ERRORS[e.errno]}")


@contextmanager
def reporting_write_errors(path):
    """Turn a full disk / read-only folder met inside the block into one line naming `path`."""
    try:
        yield
    except OSError as e:
        err = write_error(e, path)
        if err is None:
            raise
        raise err from None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OverflowError:  # not a pid at all
        return False
    return True


def _tmp_owner(name: str, target: str | None = None) -> int | None:
    """For an atomic_writer temporary name `.<target>.<pid>-<random>.tmp`: the pid; -1 for a temporary name
    without one (written before names carried it); None for any other name."""
    if not (name.startswith(".") and name.endswith(".tmp") and len(name) > 5):
        return None
    rest = name[1:-4]
    if target is not None:
        if not rest.startswith(target + "."):
            return None
        rest = rest[len(target) + 1:]
    pid = rest.rsplit(".", 1)[-1].split("-", 1)[0]
    return int(pid) if pid.isdigit() else -1


def remove_dead_tmp_files(folder: Path, target: str | None = None, unowned: bool = False) -> None:
    """Temporary files that a killed writer (kill -9 skips the clean-up) left in `folder`: those of `target`
    only, or all of them; a live process's are kept, and those without a pid too unless `unowned`."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        pid = _tmp_owner(entry.name, target)
        if pid is None or pid == os.getpid() or (pid == -1 and not unowned) or (pid > 0 and pid_alive(pid)):
            continue
        if entry.is_file(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)


@contextmanager
def atomic_writer(path: Path):
    """A binary file that appears at `path` complete or not at all (tmp file in the same folder + os.replace).
    The tmp name carries the writer's pid, so the next write of `path` removes what a killed writer left; a
    full disk or a read-only folder is one PipelineError line naming `path`, with the tmp file removed."""
    path = Path(path)
    with reporting_write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_dead_tmp_files(path.parent, path.name)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp")
    with reporting_write_errors(path):
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_writer(path) as f:
        f.write(data)


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_writer(path) as f:
        np.save(f, array, allow_pickle=False)


def load_npy(path: Path, what: str) -> np.ndarray:
    if not Path(path).is_file():
        raise PipelineError(f"missing {what}: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise PipelineError(f"cannot read {what} {path}: {e.__class__.__name__}") from None


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_csv(path: Path, df: pd.DataFrame, **kwargs) -> None:
    atomic_write_text(path, df.to_csv(index=False, **kwargs))


def atomic_copy(src: Path, dst: Path) -> None:
    atomic_write_bytes(dst, Path(src).read_bytes())


def read_csv(path: Path, what: str = "file") -> pd.DataFrame:
    """Read a CSV with every column as a string (labels like '07' keep their spelling)."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"missing {what}: {path}")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise PipelineError(f"cannot parse {path}: {str(e).splitlines()[0]}") from None


def require_columns(df: pd.DataFrame, columns, path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise PipelineError(f"{path}: missing column(s) {', '.join(map(repr, missing))} (has {list(df.columns)})")


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
