"""Train/test tables: ids, image paths and encoded targets, with one-line errors for bad input."""
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config.competition import Competition
from ..errors import PipelineError
from ..discover import IMAGE_EXTS, blank_rows, unlabeled_error
from ..discover_layouts import fill_path, metadata_table, test_names
from ..utils.io import read_csv, require_columns, stable_hash
from ..regression import regression_targets
from .pixel_tables import pixel_array, read_table
from .sources import ChannelFiles, Samples, TablePixels, as_samples, file_samples

log = logging.getLogger("foldstack")


@dataclass
class Table:
    ids: list[str]
    samples: Samples             # the rows' pixels (data/sources.py); a list of image files is taken as `file` samples
    frame: pd.DataFrame          # the rows as read (targets, group column), without pixel columns
    source: str                  # file (or folder) the rows came from, for error messages

    def __post_init__(self):
        self.samples = as_samples(self.samples)

    def __len__(self):
        return len(self.ids)

    @property
    def paths(self) -> list[Path]:
        """The file behind each row (its first channel's; the table itself for pixels in a table)."""
        return self.samples.paths

    def fingerprint(self) -> str:
        """Content hash of the table and the image files' names and sizes (cheap, no image reads); pixels held in
        the table itself are hashed whole."""
        files = [f for i in range(len(self.samples)) for f in self.samples.files(i)]
        pixels = getattr(self.samples, "array", None)
        extra = [] if pixels is None else [hashlib.sha1(np.ascontiguousarray(pixels).tobytes()).hexdigest()]
        return stable_hash([self.frame.to_csv(index=False), [p.name for p in files],
                            [p.stat().st_size for p in files], *extra], 16)


def _paths(folder: Path, ids, ext: str, source: str, lines, suffixes=("",)) -> list[Path]:
    """lines: each id's frame index (CSV line - 2; rows may have been left out), for the error messages.
    suffixes: the files each path stands for (`path + suffix`: one per channel for channel files)."""
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
    missing = [(n, Path(f"{p}{s}")) for n, p in zip(lines, paths) for s in suffixes if not Path(f"{p}{s}").is_file()]
    if missing:
        n, p = missing[0]
        raise PipelineError(f"{source} row {n + 2}: {'image' if suffixes == ('',) else 'channel file'} not found: {p}"
                            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return paths


def samples_of(comp: Competition, folder: Path, ids, ext: str, frame: pd.DataFrame, source: str,
               table: Path | None = None) -> Samples:
    """The rows' pixels as competition.image_source says (data/sources.py); `table`: the file holding the frame,
    for pixels in a table."""
    kind = comp.image_source
    if kind == "table":
        return TablePixels(pixel_array(table, comp.pixel_columns, comp.pixel_shape, frame.index), table)
    if kind == "channel_files":
        return ChannelFiles(_paths(folder, ids, "", source, frame.index, tuple(comp.channel_suffixes)),
                            comp.channel_suffixes)
    return file_samples(kind, _paths(folder, ids, ext, source, frame.index))


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
    elif comp.train_metadata:  # COCO-style JSON metadata (herbarium)
        source = str(base / comp.train_metadata)
        frame = metadata_table(base / comp.train_metadata, comp.id_col)
    else:
        source = str(base / comp.train_csv)
        frame = table_rows(comp, base / comp.train_csv, "train csv")
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
    names = fill_path(comp.train_path, frame, source) if comp.train_path else ids  # label folder, nested path
    return Table(ids, samples_of(comp, folder, names, comp.train_image_ext, frame, source, base / comp.train_csv),
                 frame, source)


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
    if comp.image_source == "table":
        return Table(ids, test_pixels(comp, base, frame), frame, source)
    names = (test_names(base / comp.test_metadata, ids, source) if comp.test_metadata  # herbarium
             else fill_path(comp.test_path, frame, source, "test_path") if comp.test_path else ids)
    return Table(ids, samples_of(comp, base / comp.test_dir, names, comp.test_image_ext, frame, source), frame, source)


def table_rows(comp: Competition, path: Path, what: str) -> pd.DataFrame:
    """A train table's rows as strings, without its pixel columns; a table of pixels without an id column (the
    digit-recognizer's train.csv) gets row numbers from 1 as ids."""
    patterns = comp.pixel_columns if comp.image_source == "table" else ()
    frame, _ = read_table(path, what, patterns)
    if comp.image_source == "table" and comp.id_col not in frame.columns:
        frame.insert(0, comp.id_col, [str(n + 1) for n in range(len(frame))])
    return frame


def test_pixels(comp: Competition, base: Path, submission: pd.DataFrame) -> TablePixels:
    """The test rows' pixels from competition.test_csv, in the sample submission's order: matched by id_col, or
    row by row when the table has no such column (digit-recognizer: ImageId is the row number from 1)."""
    if not comp.test_csv:
        raise PipelineError("competition.test_csv: name the table holding the test rows' pixels "
                            "(competition.image_source is table)")
    path, _, order = rows_of_test_table(comp, base, submission)
    return TablePixels(pixel_array(path, comp.pixel_columns, comp.pixel_shape, order), path)


def rows_of_test_table(comp: Competition, base: Path, submission: pd.DataFrame) -> tuple:
    """(competition.test_csv's path, its rows as strings without pixel columns, the row of each sample-submission
    row in it): matched by id_col, or row by row when the table has no such column."""
    path = base / comp.test_csv
    frame, _ = read_table(path, "test table", comp.pixel_columns)
    if comp.id_col in frame.columns:
        where = pd.Series(range(len(frame)), index=frame[comp.id_col])
        missing = submission.index[~submission[comp.id_col].isin(where.index)]
        if len(missing):
            raise PipelineError(f"{comp.sample_submission} row {missing[0] + 2}: id "
                                f"{submission[comp.id_col][missing[0]]!r} is not in {path}")
        order = where.loc[submission[comp.id_col]].to_numpy()
    elif len(frame) != len(submission):
        raise PipelineError(f"{path}: {len(frame)} rows but {len(submission)} in {comp.sample_submission}; without "
                            f"an {comp.id_col!r} column they must match row by row")
    else:
        order = np.arange(len(frame))
    return path, frame, order


def output_names(comp: Competition) -> list[str]:
    """Column names of a prediction matrix: the positive class for binary, the targets for regression, else classes."""
    if comp.task == "regression":
        return list(comp.target_cols)
    return [comp.classes[1]] if comp.task == "binary" else list(comp.classes)


def encode_targets(table: Table, comp: Competition) -> np.ndarray:
    """Targets as a float32 (N, n_outputs) matrix: one-hot / multi-hot / positive-class column.

    Soft targets fit the same shape, so mixup and pseudo-labels need no second code path. Regression: scaled values."""
    if comp.task == "regression":
        return regression_targets(table.frame, comp, table.source)
    _check_classes(comp)
    if len(comp.target_cols) > 1:
        return _class_columns(table, comp)
    classes, src, frame = comp.classes, table.source, table.frame
    y = np.zeros((len(table), len(classes)), np.float32)
    if comp.task == "multilabel":
        col, lookup = comp.target_cols[0], {c: i for i, c in enumerate(classes)}
        for row, (line, value) in enumerate(frame[col].items()):
            for tag in value.split():
                if tag not in lookup:
                    raise PipelineError(f"{src} row {line + 2}: tag {tag!r} is not a known class")
                y[row, lookup[tag]] = 1
        return y
    y[np.arange(len(y)), class_index(table, comp)] = 1
    return y[:, 1:] if comp.task == "binary" else y


def class_index(table: Table, comp: Competition) -> np.ndarray:
    """The class of each row of a single-label task: (N,) int64 indices into competition.classes, without the
    (N, K) one-hot (folds need only these; herbarium's 840k rows x 15,501 classes in float32 would take 52 GB)."""
    _check_classes(comp)
    if len(comp.target_cols) > 1:
        return _class_columns(table, comp).argmax(1)
    classes, src, col = comp.classes, table.source, comp.target_cols[0]
    idx = table.frame[col].map({c: i for i, c in enumerate(classes)})
    bad = idx.index[idx.isna()]
    if len(bad):
        known = classes if len(classes) <= 20 else f"(none of the {len(classes)} of competition.classes)"
        raise PipelineError(f"{src} row {bad[0] + 2}: {col}={table.frame[col][bad[0]]!r} is not a known class {known}")
    return idx.to_numpy(dtype=np.int64)


def _check_classes(comp: Competition) -> None:
    if comp.task == "binary" and len(comp.classes) != 2:
        raise PipelineError(f"competition.classes: binary task needs exactly 2 classes, got {comp.classes}")
    if len(comp.classes) < 2:
        raise PipelineError(f"competition.classes: need at least 2 classes, got {comp.classes}")


def _class_columns(table: Table, comp: Competition) -> np.ndarray:
    """One 0/1 column per class, as (N, K) float32."""
    values = table.frame[comp.target_cols].apply(pd.to_numeric, errors="coerce")
    bad = values.index[values.isna().any(axis=1) | ~values.isin([0, 1]).all(axis=1)]
    if len(bad):
        raise PipelineError(f"{table.source} row {bad[0] + 2}: class columns must be 0 or 1")
    return values.to_numpy(np.float32)
