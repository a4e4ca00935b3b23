"""Train/test tables: ids, image paths and encoded targets, with one-line errors for bad input."""
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config.competition import Competition
from ..errors import PipelineError
from ..discover import IMAGE_EXTS, blank_rows, unlabeled_error
from ..utils.io import read_csv, require_columns, stable_hash

log = logging.getLogger("foldstack")


@dataclass
class Table:
    ids: list[str]
    paths: list[Path]
    frame: pd.DataFrame          # the rows as read (targets, group column)
    source: str                  # file (or folder) the rows came from, for error messages

    def __len__(self):
        return len(self.ids)

    def fingerprint(self) -> str:
        """Content hash of the table and the image files' names and sizes (cheap, no image reads)."""
        sizes = [p.stat().st_size for p in self.paths]
        return stable_hash([self.frame.to_csv(index=False), [p.name for p in self.paths], sizes], 16)


def _paths(folder: Path, ids, ext: str, source: str, lines) -> list[Path]:
    """lines: each id's frame index (CSV line - 2; rows may have been left out), for the error messages."""
    # Lexical normalisation, not Path.resolve(): realpath costs a syscall per path component (4 s for 17,500 ids
    # under a linked input/); what it must catch is an id like '../x' escaping the folder.
    base = os.path.normpath(os.path.abspath(folder))
    lines = list(lines)
    paths = []
    for n, name in zip(lines, ids):
        path = os.path.normpath(os.path.join(base, f"{name}{ext}"))
        if not path.startswith(base + os.sep):
            raise PipelineError(f"{source} row {n + 2}: id {name!r} points outside {folder}")
        paths.append(Path(path))
    missing = [(n, p) for n, p in zip(lines, paths) if not p.is_file()]
    if missing:
        n, p = missing[0]
        raise PipelineError(f"{source} row {n + 2}: image not found: {p}"
                            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return paths


def input_dir(comp: Competition, root: Path, name: str) -> Path:
    return Path(root) / (comp.input_dir or f"input/{name}")


def _check_ids(ids: pd.Series, source: str) -> None:
    empty = ids.index[ids == ""]
    if len(empty):
        raise PipelineError(f"{source} row {empty[0] + 2}: empty id")
    dup = ids.index[ids.duplicated()]
    if len(dup):
        raise PipelineError(f"{source} row {dup[0] + 2}: duplicate id {ids[dup[0]]!r}")


def load_train(comp: Competition, root: Path, name: str) -> Table:
    base = input_dir(comp, root, name)
    folder = base / comp.train_dir
    if comp.layout in ("folders", "filenames"):  # the label: the file's folder, or its name's first part
        if not folder.is_dir():
            raise PipelineError(f"missing train folder: {folder}")
        files = sorted(p for p in folder.glob("*/*" if comp.layout == "folders" else "*")
                       if p.suffix.lower() in IMAGE_EXTS)
        ids = [f"{p.parent.name}/{p.name}" if comp.layout == "folders" else p.name for p in files]
        labels = [p.parent.name if comp.layout == "folders" else p.name.split(".")[0] for p in files]
        frame = pd.DataFrame({comp.id_col: ids, comp.target_cols[0]: labels})
        source = str(folder)
    else:
        source = str(base / comp.train_csv)
        frame = read_csv(base / comp.train_csv, "train csv")
    cols = [comp.id_col, *comp.target_cols] + ([comp.group_col] if comp.group_col else [])
    require_columns(frame, cols, source)
    _check_ids(frame[comp.id_col], source)
    blank = blank_rows(frame, comp.target_cols)
    if len(blank):
        if not comp.drop_unlabeled:
            raise unlabeled_error(source, blank, comp.target_cols)
        # The frame keeps its index (CSV line - 2), so later errors still name the right line of the file.
        frame = frame.drop(index=blank)
        log.info(f"competition.drop_unlabeled: left out {len(blank)} train rows with an empty target ({source})")
    if not len(frame):
        raise PipelineError(f"{source}: no rows")
    ids = frame[comp.id_col].tolist()
    return Table(ids, _paths(folder, ids, comp.train_image_ext, source, frame.index), frame, source)


def load_test(comp: Competition, root: Path, name: str) -> Table:
    base = input_dir(comp, root, name)
    source = str(base / comp.sample_submission)
    frame = read_csv(base / comp.sample_submission, "sample submission")
    if list(frame.columns) != list(comp.submission_columns):
        raise PipelineError(f"{source}: columns {list(frame.columns)} differ from competition.submission_columns "
                            f"{list(comp.submission_columns)} in configs/{name}.yaml (delete that file to infer again)")
    _check_ids(frame[comp.id_col], source)
    if not len(frame):
        raise PipelineError(f"{source}: no rows")
    ids = frame[comp.id_col].tolist()
    return Table(ids, _paths(base / comp.test_dir, ids, comp.test_image_ext, source, frame.index), frame, source)


def output_names(comp: Competition) -> list[str]:
    """Column names of a prediction matrix: the positive class for binary, else every class."""
    return [comp.classes[1]] if comp.task == "binary" else list(comp.classes)


def encode_targets(table: Table, comp: Competition) -> np.ndarray:
    """Targets as a float32 (N, n_outputs) matrix: one-hot / multi-hot / positive-class column.

    Soft targets fit the same shape, so mixup and pseudo-labels need no second code path."""
    classes, src, frame = comp.classes, table.source, table.frame
    if comp.task == "binary" and len(classes) != 2:
        raise PipelineError(f"competition.classes: binary task needs exactly 2 classes, got {classes}")
    if len(classes) < 2:
        raise PipelineError(f"competition.classes: need at least 2 classes, got {classes}")
    if len(comp.target_cols) > 1:  # one 0/1 column per class
        values = frame[comp.target_cols].apply(pd.to_numeric, errors="coerce")
        bad = values.index[values.isna().any(axis=1) | ~values.isin([0, 1]).all(axis=1)]
        if len(bad):
            raise PipelineError(f"{src} row {bad[0] + 2}: class columns must be 0 or 1")
        return values.to_numpy(np.float32)
    col, lookup = comp.target_cols[0], {c: i for i, c in enumerate(classes)}
    y = np.zeros((len(table), len(classes)), np.float32)
    if comp.task == "multilabel":
        for row, (line, value) in enumerate(frame[col].items()):
            for tag in value.split():
                if tag not in lookup:
                    raise PipelineError(f"{src} row {line + 2}: tag {tag!r} is not a known class")
                y[row, lookup[tag]] = 1
        return y
    idx = frame[col].map(lookup)
    bad = idx.index[idx.isna()]
    if len(bad):
        raise PipelineError(f"{src} row {bad[0] + 2}: {col}={frame[col][bad[0]]!r} is not a known class {classes}")
    y[np.arange(len(idx)), idx.to_numpy(dtype=np.int64)] = 1
    return y[:, 1:] if comp.task == "binary" else y


def stratify_labels(y: np.ndarray, comp: Competition) -> np.ndarray | None:
    if comp.task == "binary":
        return y[:, 0].astype(int)
    if comp.task == "multiclass":
        return y.argmax(1)
    return None  # multilabel: stages/folds.py stratifies the multi-hot matrix itself (iterative stratification)
