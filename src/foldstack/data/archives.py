"""Kaggle downloads as they come: the zip archives of a competition folder (train.zip, test.zip, train.csv.zip)
are unpacked beside themselves on first use, so that discovery and the stages read the folders and tables inside."""
import logging
import os
import zipfile
from pathlib import Path

from ..errors import PipelineError
from ..utils.io import remove_dead_staging, remove_tree, staging_name

log = logging.getLogger("foldstack")


def unpack_archives(folder: Path) -> list[str]:
    """Unpack each <name>.zip in `folder` whose <name> (train/, or a file such as train.csv) is not there yet; the
    names unpacked. A zip holding one top entry of that name (Kaggle's train.zip holds train/) gives it; a zip of
    loose files (MLE-bench's) fills <name>/. Built in a staging folder and renamed: a failed or killed unpack leaves
    no <name>. A 7z archive is refused with the command that unpacks it."""
    folder, done = Path(folder), []
    remove_dead_staging(folder)
    for archive in sorted(folder.glob("*.zip")):
        target = folder / archive.stem
        if target.exists():
            continue
        staging = folder / staging_name(target.name)
        try:
            with zipfile.ZipFile(archive) as z:
                z.extractall(staging)  # zipfile drops absolute paths and `..`: nothing lands outside staging
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            remove_tree(staging)
            raise PipelineError(f"{archive}: cannot unpack it ({e}): download it again") from None
        entries = [p for p in staging.iterdir() if p.name != "__MACOSX"]
        os.replace(entries[0] if len(entries) == 1 and entries[0].name == target.name else staging, target)
        remove_tree(staging)
        done.append(target.name)
        log.info(f"unpacked {archive} -> {target}")
    for archive in sorted(folder.glob("*.7z")):
        if not (folder / archive.stem).exists():
            raise PipelineError(f"{archive}: a 7z archive: unpack it in {folder} (`7z x {archive.name}`), then rerun")
    return done
