"""Atomic writes, content hashes and CSV reading with one-line errors."""
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import PipelineError


def stable_hash(obj, length: int = 12) -> str:
    """Hash of a JSON-able object, independent of dict order."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def sha256_file(path) -> str:
    """The file's sha256 (hex), memoised per process by its resolved path, size and mtime (weights are GBs)."""
    real = Path(path).resolve()
    st = real.stat()
    return _sha256_of(str(real), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=256)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:  # size and mtime: a rewritten file is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


# The one staging protocol: `<name>` is built as the hidden `.<name>.<what>-<pid>[-<random>]` beside it, `what`
# "tmp" (being built) or "old" (replaced, on its way out); the next writer of `<name>` removes a dead one's.
STAGING = re.compile(r"\.(?P<target>.+)\.(?P<what>tmp|old)-(?P<pid>\d+)(?:-\w+)?")


def staging_name(target: str, what: str = "tmp") -> str:
    """The hidden name under which this process builds `target` (a folder; atomic_writer adds a random part)."""
    return f".{target}.{what}-{os.getpid()}"


def dead_staging(folder: Path, target: str | None = None) -> list[tuple[Path, str]]:
    """[(path, what)] of the staging entries in `folder` (of `target` only, or of any name) whose process is
    dead: a killed run's leftovers (kill -9 skips every clean-up)."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    found = []
    for name in names:
        m = STAGING.fullmatch(name)
        if m and (target is None or m["target"] == target) and not pid_alive(int(m["pid"])):
            found.append((Path(folder) / name, m["what"]))
    return found


def remove_dead_staging(folder: Path, target: str | None = None) -> None:
    """Remove what dead processes left staged in `folder` (files and folders), for `target` or any name."""
    for path, _ in dead_staging(folder, target):
        if path.is_dir() and not path.is_symlink():
            remove_tree(path)
        else:
            path.unlink(missing_ok=True)


@contextmanager
def atomic_writer(path: Path):
    """A binary file that appears at `path` complete or not at all (tmp file in the same folder + os.replace).
    The tmp name is a staging name (its pid), so the next write of `path` removes what a killed writer left; a
    full disk or a read-only folder is one PipelineError line naming `path`, with the tmp file removed."""
    path = Path(path)
    with reporting_write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_dead_staging(path.parent, path.name)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=staging_name(path.name) + "-")
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
