"""Discover a competition's setup from its Kaggle folder (layout, id and target columns, task, classes, metric,
submission format): written once to configs/<comp>.yaml, then the user's."""
import logging
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import yaml

from . import discover_layouts as layouts
from . import discover_sources as sources
from .data.archives import unpack_archives
from .description import competition_metric
from .discover_targets import check_ranked_metric, target_columns, task_of, top_k_submission
from .data.tabular import discover_tabular
from .errors import PipelineError
from .regression import discover_regression
from .utils.io import atomic_write_text, read_csv

log = logging.getLogger("foldstack")

# The inferred keys in the order the YAML shows them.
KEY_ORDER = ["layout", "train_csv", "test_csv", "train_metadata", "test_metadata", "sample_submission", "train_dir",
             "test_dir", "train_path", "test_path", "train_image_ext", "test_image_ext", "image_source",
             "channel_suffixes", "pixel_columns", "pixel_shape", "id_col", "target_cols", "task", "classes", "metric",
             "target_range", "submission_format", "top_k", "submission_columns", "group_col", "tabular_cols",
             "drop_unlabeled"]
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".gif", ".tif", ".tiff", ".bmp")
TRAIN_DIRS = ("train", "train_images", "images", "train_imgs")
TEST_DIRS = ("test", "test_images", "images", "test_imgs")


def _first_existing(root: Path, names, what: str) -> str:
    for n in names:
        if (root / n).is_dir():
            return n
    raise PipelineError(f"{root}: no {what} image folder (looked for {', '.join(names)})")


def _only(files: list[Path], preferred: str, what: str) -> Path:
    """The one file of a kind: the exact Kaggle name among several, else a refusal naming them all (taking the
    first silently could train on an old or a sample file)."""
    if len(files) > 1:
        exact = [f for f in files if f.name == preferred]
        if not exact:
            raise PipelineError(f"{files[0].parent}: several {what} files ({', '.join(f.name for f in files)}); "
                                f"keep one, or name it in competition.{what.replace(' ', '_')}")
        return exact[0]
    return files[0]


def _rows(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    if not len(frame):
        raise PipelineError(f"{path}: header only, no rows")
    return frame


def image_folder(root: Path, names, ids, what: str) -> tuple[str, str]:
    """(folder, suffix) of the first candidate folder, at the top or one level down (`jpeg/train` beside a `train/`
    of DICOM files), in which the ids name image files; a refusal naming the first candidate's problem."""
    candidates = [n for n in names if (root / n).is_dir()]
    candidates += [f"{d.name}/{n}" for d in sorted(root.iterdir()) if d.is_dir() and d.name not in names
                   for n in names if (d / n).is_dir()]
    if not candidates:
        raise PipelineError(f"{root}: no {what} image folder (looked for {', '.join(names)}, also one level down)")
    first_error = None
    for name in candidates:
        try:
            ext = image_ext_for(root / name, ids)
        except PipelineError as e:
            first_error = first_error or e
            continue
        if first_error is not None:  # SIIM: jpeg/train, beside a train/ of DICOM files
            log.info(f"competition.{what}_dir: {name}, where the ids name image files ({first_error})")
        return name, ext
    raise first_error


def image_ext_for(folder: Path, ids) -> str:
    """The suffix that turns ids into existing file names ('' when ids already are file names)."""
    probe = list(ids[:5])
    for ext in ("",) + IMAGE_EXTS + tuple(e.upper() for e in IMAGE_EXTS):
        if probe and all((folder / f"{i}{ext}").is_file() for i in probe):
            return ext
    raise PipelineError(f"{folder}: no image file for id {probe[0]!r} (tried no suffix and {', '.join(IMAGE_EXTS)})")


def blank_rows(frame: pd.DataFrame, cols: list[str]) -> pd.Index:
    """Rows (frame index) with an empty or whitespace-only cell in any of `cols` (read as '' with NaN off)."""
    return frame.index[frame[cols].apply(lambda c: c.str.strip() == "").any(axis=1)]


def unlabeled_error(path, index, cols) -> PipelineError:
    """index: frame index labels, named as CSV line numbers (header = 1): 'rows 3, 7, 12 (40 in all)'."""
    rows = f"row{'s' if len(index) > 1 else ''} " + ", ".join(str(i + 2) for i in index[:5])
    rows += f" ({len(index)} in all)" if len(index) > 5 else ""
    return PipelineError(f"{path} {rows}: empty {'/'.join(cols)}; fill them, or train without them "
                         f"with OVERRIDES=\"competition.drop_unlabeled=true\"")


GROUP_NAMES = ("patientid", "patient", "subjectid", "subject", "studyinstanceuid", "studyid")


def patient_column(train: pd.DataFrame, id_col: str) -> str | None:
    """A patient, subject or study column holding repeats (patient_id, PatientID, subject, a repeated
    StudyInstanceUID): the folds group by it, or the same patient's images would sit in train and validation (a
    leak the CV would reward)."""
    for col in train.columns:
        repeats = train[col].duplicated().sum() if col != id_col and col.lower().replace("_", "") in GROUP_NAMES else 0
        if repeats:
            log.info(f"competition.group_col: {col} ({train[col].nunique()} values for {len(train)} rows): the "
                     f"folds keep each {col}'s images together")
            return col
    return None


def _drop_unlabeled(train: pd.DataFrame, target_cols: list[str], path, drop: bool) -> pd.DataFrame:
    blank = blank_rows(train, target_cols)
    if len(blank) and not drop:  # an empty cell would become a class named '' (or turn 0/1 into 3 classes)
        raise unlabeled_error(path, blank, target_cols)
    return _rows(train.drop(index=blank), path)


def discover_competition(input_dir: Path, drop_unlabeled: bool = False) -> dict:
    """The competition section for `input_dir` (its zips unpacked first). Rows with an empty target are refused
    (naming them) unless drop_unlabeled, which leaves them out of the discovery (and of training: the flag is
    written too). The metric is the one the folder's description.md names, if any, else the task's default."""
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise PipelineError(f"competition folder not found: {input_dir} (unpack the Kaggle download there)")
    unpack_archives(input_dir)
    subs = sorted(input_dir.glob("sample_submission*.csv")) or sorted(input_dir.glob("*submission*.csv"))
    if not subs:
        raise PipelineError(f"{input_dir}: no sample_submission*.csv")
    sub_path = _only(subs, "sample_submission.csv", "sample submission")
    sub = read_csv(sub_path, "sample submission")
    if len(sub.columns) < 2:
        raise PipelineError(f"{sub_path}: expected an id column and at least one target column")
    _rows(sub, sub_path)
    id_col, sub_targets = sub.columns[0], list(sub.columns[1:])
    metadata = layouts.json_metadata_layout(input_dir, sub, id_col, image_folder, TRAIN_DIRS, TEST_DIRS)  # herbarium
    comp = dict(sample_submission=sub_path.name, id_col=id_col, submission_columns=list(sub.columns))
    if metadata is None:  # image files; else pixels in tables, arrays, DICOM, channel files
        comp.update(sources.test_layout(input_dir, sub, id_col, TEST_DIRS, image_folder))
    csvs = (sources.train_tables(input_dir, comp) or sorted(input_dir.glob("train*.csv"))
            or sorted(input_dir.glob("labels.csv")))  # labels.csv: dog breeds
    if metadata is not None:  # COCO-style JSON metadata is the train table
        found, train = metadata
        train = _drop_unlabeled(train, found["target_cols"], input_dir / layouts.TRAIN_METADATA, drop_unlabeled)
        comp.update(found, **task_of(train, found["target_cols"], sub_targets, layouts.TRAIN_METADATA))
        if drop_unlabeled:
            comp["drop_unlabeled"] = True
    elif csvs:
        train_path = _only(csvs, "train.csv", "train csv")
        train = _rows(sources.read_train(train_path, comp), train_path)
        if id_col not in train.columns:
            raise PipelineError(f"{train_path}: no id column {id_col!r} (the first column of {sub_path.name})")
        target_cols = target_columns(train, id_col, sub_targets, train_path)
        train = _drop_unlabeled(train, target_cols, train_path, drop_unlabeled)
        found = sources.train_files(input_dir, train, id_col, comp, TRAIN_DIRS)
        if found is None:  # image files: by id, or in label folders (paddy)
            found = layouts.train_images(input_dir, train, id_col, target_cols, image_folder, TRAIN_DIRS)
        task = discover_regression(train, target_cols, sub) or task_of(train, target_cols, sub_targets, train_path)
        task.update(top_k_submission(sub, sub_targets, train[target_cols[0]], task))  # whale: k labels a row
        comp.update(layout="csv", train_csv=train_path.name, target_cols=target_cols, **found, **task)
        group = patient_column(train, id_col)
        if group is not None:
            comp["group_col"] = group
        comp.update(discover_tabular(input_dir, train, comp))  # meta features: columns the test rows have too
        if drop_unlabeled:
            comp["drop_unlabeled"] = True
    else:
        comp.update(layouts.unlabeled_folder(input_dir, _first_existing(input_dir, TRAIN_DIRS, "train"), sub, sub_targets))
    named = competition_metric(input_dir, comp["task"])  # description.md, else the slug's known metric
    if named is not None:
        comp["metric"] = named[0]
        log.info(f"competition.metric: {named[0]}, {named[1]}")
        check_ranked_metric(comp, sub_path)
    return {k: comp[k] for k in KEY_ORDER if k in comp}


class _Findings(logging.Handler):
    """What discovery logged (what it found and why), kept for the YAML's header."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def write_competition_config(path: Path, input_dir: Path, shown_as=None, drop_unlabeled: bool = False) -> dict:
    findings, level = _Findings(), log.level
    log.addHandler(findings)
    log.setLevel(min(log.getEffectiveLevel(), logging.INFO))
    try:
        comp = discover_competition(input_dir, drop_unlabeled)
        extra = sources.input_sections(comp, input_dir)  # model.in_chans, data.mean/std of non-RGB inputs
    finally:
        log.removeHandler(findings)
        log.setLevel(level)
    header = (f"# Inferred from {shown_as or input_dir} on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.\n"
              f"# This file is yours now: edit it (it wins over inference) or delete it to infer again.\n"
              f"# Any other section (folds, model, data, train, loss, predict, stack, runtime) may go here too:\n"
              f"# see docs/config.md for the keys.\n")
    header += "".join(f"# found: {' '.join(line.split())}\n" for line in findings.lines)
    atomic_write_text(path, header + yaml.safe_dump({"competition": comp, **extra}, sort_keys=False))
    return comp
