"""Kaggle downloads as they come: the archives of a competition folder (train.zip, train.7z, train.json.7z,
train.tar.gz, train.csv.zip) are unpacked beside themselves on first use, so that discovery and the stages read the
folders and tables inside. One routine stages, checks and renames; each format only extracts into the staging folder."""
import logging
import lzma
import os
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import py7zr
from py7zr.exceptions import ArchiveError

from ..errors import PipelineError, first_line
from ..utils.io import remove_dead_staging, remove_tree, staging_name

log = logging.getLogger("foldstack")

MAX_NESTING = 3  # a zip of zips of zips is unpacked; deeper archives are left packed (no endless bombs)
MAC_JUNK = "__MACOSX"  # resource forks zipped by macOS: ._name files that would pass for images
# what a damaged, truncated or encrypted archive raises (zipfile: RuntimeError when encrypted, NotImplementedError
# for an unknown compression)
UNPACK_ERRORS = (zipfile.BadZipFile, tarfile.TarError, ArchiveError, py7zr.PasswordRequired, lzma.LZMAError,
                 zlib.error, EOFError, OSError, RuntimeError, NotImplementedError)


def _refuse_escaping(archive: str, names: list[str]) -> None:
    """Refuse an archive with an entry that would land outside the folder it unpacks into (zip slip: '../x', '/x');
    backslashes count as separators, as in archives made on Windows."""
    for name in names:
        path = PurePosixPath(name.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts:
            raise PipelineError(f"{archive}: entry {name!r} points outside the folder it unpacks into; not unpacking "
                                f"it (a damaged or malicious archive)")


def _extract_zip(path: Path, label: str, staging: Path) -> None:
    with zipfile.ZipFile(path) as z:
        _refuse_escaping(label, z.namelist())
        z.extractall(staging)


def _extract_7z(path: Path, label: str, staging: Path) -> None:
    with py7zr.SevenZipFile(path) as z:
        _refuse_escaping(label, z.getnames())
        z.extractall(staging)


def _extract_tar(path: Path, label: str, staging: Path) -> None:
    with tarfile.open(path) as t:  # the compression (none, gz, bz2, xz) is read from the content
        _refuse_escaping(label, t.getnames())
        t.extractall(staging, filter="data")  # also refuses links pointing outside and device files


EXTRACTORS = {".zip": _extract_zip, ".7z": _extract_7z, ".tar": _extract_tar, ".tar.gz": _extract_tar,
              ".tgz": _extract_tar, ".tar.bz2": _extract_tar, ".tar.xz": _extract_tar}


def archive_suffix(path: Path) -> str | None:
    """The archive suffix of `path` ('.tar.gz' of train.tar.gz, '.7z' of train.json.7z), None for other files."""
    name = path.name.lower()
    found = [s for s in EXTRACTORS if name.endswith(s) and len(name) > len(s) and not name.startswith(".")]
    return found[0] if found and path.is_file() else None


def unpacked_path(path: Path) -> Path:
    """Where archive `path` unpacks: beside it, its name less the suffix (train/ of train.tar.gz)."""
    return path.with_name(path.name[:-len(archive_suffix(path))])


def extract_into(path: Path, folder: Path, label: str | None = None) -> None:
    """The entries of archive `path` written under `folder` by its format's extractor, an entry pointing outside
    refused first; `label` names the archive in errors (the path by default)."""
    EXTRACTORS[archive_suffix(path)](path, label or str(path), folder)


def _content(staging: Path, name: str) -> Path:
    """What becomes the target: the one entry called `name` at the end of a chain of lone folders (Kaggle's train.zip
    holds train/, statoil's train.json.7z data/processed/train.json), else the staging folder (loose files)."""
    here = staging
    while len(entries := list(here.iterdir())) == 1:
        if entries[0].name == name:
            return entries[0]
        if entries[0].is_symlink() or not entries[0].is_dir():
            break
        here = entries[0]
    return staging


def _unpack(path: Path, label: str, target: Path, depth: int) -> tuple[int, int]:
    """Unpack `path` into `target` (staged beside it, renamed once complete; nothing left on failure) and the
    archives found inside it; (files, nested archives unpacked). `label` names the archive in errors."""
    staging = target.parent / staging_name(target.name)
    try:
        try:
            extract_into(path, staging, label)
        except UNPACK_ERRORS as e:
            raise PipelineError(f"{label}: cannot unpack it ({first_line(e, with_type=True)}): download it again") \
                from None
        remove_tree(staging / MAC_JUNK)
        staging.mkdir(exist_ok=True)  # an archive without entries made none
        nested = _unpack_nested(staging, label, depth)
        files = sum(1 for p in staging.rglob("*") if p.is_file())
        if not files:
            raise PipelineError(f"{label}: holds no files (an empty archive): download it again, or put its files "
                                f"at {target} yourself")
        os.replace(_content(staging, target.name), target)
    finally:
        remove_tree(staging)
    return files, nested


def _unpack_nested(folder: Path, label: str, depth: int) -> int:
    """Unpack the archives found in what was just unpacked (a zip of zips, train.zip holding train.csv.zip), each
    beside itself and then removed (the outer archive still has it), up to MAX_NESTING deep; how many."""
    if depth >= MAX_NESTING:
        return 0
    count = 0
    for path in sorted(p for p in folder.rglob("*") if archive_suffix(p)):
        target = unpacked_path(path)
        if not target.exists():
            _, inside = _unpack(path, f"{label}: {path.relative_to(folder)}", target, depth + 1)
            path.unlink()
            count += 1 + inside
    return count


def unpack_archives(folder: Path) -> list[str]:
    """Unpack each archive of `folder` (zip, 7z, tar, tar.gz/tgz, tar.bz2, tar.xz) whose name less its suffix
    (train/, or a file such as train.json) is not there yet; the names unpacked. An archive holding one entry of
    that name, maybe down lone folders, gives it; one of loose files (MLE-bench's) fills <name>/. An entry
    pointing outside, an archive that fails or holds no file: one PipelineError line naming it, nothing left."""
    folder, done = Path(folder), []
    remove_dead_staging(folder)
    for path in sorted(p for p in folder.iterdir() if archive_suffix(p)):
        target = unpacked_path(path)
        if target.exists():
            continue
        files, nested = _unpack(path, str(path), target, depth=1)
        inside = f", {nested} archive{'s' * (nested > 1)} inside it unpacked too" if nested else ""
        log.info(f"unpacked {path.name} -> {target} ({files} file{'s' * (files > 1)}{inside})")
        done.append(target.name)
    return done
