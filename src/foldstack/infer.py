"""Infer a competition's setup from its Kaggle folder: written once to configs/<comp>.yaml, then the user's."""
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import yaml

from .errors import PipelineError
from .utils.io import atomic_write_text, read_csv

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".gif", ".tif", ".tiff", ".bmp")
TRAIN_DIRS = ("train", "train_images", "images", "train_imgs")
TEST_DIRS = ("test", "test_images", "images", "test_imgs")


def _first_existing(root: Path, names, what: str) -> str:
    for n in names:
        if (root / n).is_dir():
            return n
    raise PipelineError(f"{root}: no {what} image folder (looked for {', '.join(names)})")


def image_ext_for(folder: Path, ids) -> str:
    """The suffix that turns ids into existing file names ('' when ids already are file names)."""
    probe = list(ids[:5])
    for ext in ("",) + IMAGE_EXTS + tuple(e.upper() for e in IMAGE_EXTS):
        if probe and all((folder / f"{i}{ext}").is_file() for i in probe):
            return ext
    raise PipelineError(f"{folder}: no image file for id {probe[0]!r} (tried no suffix and {', '.join(IMAGE_EXTS)})")


def _is_numeric(values) -> bool:
    return pd.to_numeric(pd.Series(list(values)), errors="coerce").notna().all()


def sort_classes(values) -> list[str]:
    values = sorted(set(values))
    return sorted(values, key=float) if _is_numeric(values) else values


def _looks_like_tags(values: pd.Series) -> bool:
    """Space-separated tags: the tokens combine into more distinct values than there are tokens."""
    if not values.str.contains(r"\s").any():
        return False
    tokens = {t for v in values for t in v.split()}
    return len(tokens) < values.nunique()


def _single_column_task(values: pd.Series) -> dict:
    if _looks_like_tags(values):
        tokens = sort_classes(t for v in values for t in v.split())
        return dict(task="multilabel", classes=tokens, metric="micro_f1", submission_format="tags")
    classes = sort_classes(values)
    if len(classes) == 2 and set(classes) <= {"0", "1", "0.0", "1.0"}:
        return dict(task="binary", classes=classes, metric="roc_auc", submission_format="probability")
    return dict(task="multiclass", classes=classes, metric="accuracy", submission_format="label")


def _targets(train: pd.DataFrame, id_col: str, sub_targets: list[str], train_path) -> dict:
    others = [c for c in train.columns if c != id_col]
    if sub_targets and all(c in train.columns for c in sub_targets):
        if len(sub_targets) == 1:
            return dict(target_cols=sub_targets, **_single_column_task(train[sub_targets[0]]))
        onehot = train[sub_targets].apply(pd.to_numeric, errors="coerce")
        if onehot.isna().any().any():
            raise PipelineError(f"{train_path}: class columns {sub_targets} must hold numbers")
        task = "multiclass" if (onehot.sum(axis=1) == 1).all() else "multilabel"
        return dict(target_cols=sub_targets, task=task, classes=sub_targets, metric="log_loss",
                    submission_format="class_columns")
    if len(sub_targets) > 1:  # one label column in train, one probability column per class in the submission
        for col in others:
            if set(train[col]) <= set(sub_targets):
                return dict(target_cols=[col], task="multiclass", classes=sub_targets, metric="log_loss",
                            submission_format="class_columns")
    if len(others) == 1:
        return dict(target_cols=others, **_single_column_task(train[others[0]]))
    raise PipelineError(f"{train_path}: cannot tell the target column among {others}; "
                        f"set competition.target_cols in the config")


def infer_competition(input_dir: Path) -> dict:
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise PipelineError(f"competition folder not found: {input_dir} (unpack the Kaggle download there)")
    subs = sorted(input_dir.glob("sample_submission*.csv")) or sorted(input_dir.glob("*submission*.csv"))
    if not subs:
        raise PipelineError(f"{input_dir}: no sample_submission*.csv")
    sub = read_csv(subs[0], "sample submission")
    if len(sub.columns) < 2:
        raise PipelineError(f"{subs[0]}: expected an id column and at least one target column")
    id_col, sub_targets = sub.columns[0], list(sub.columns[1:])
    test_dir = _first_existing(input_dir, TEST_DIRS, "test")
    comp = dict(sample_submission=subs[0].name, test_dir=test_dir, id_col=id_col,
                submission_columns=list(sub.columns),
                test_image_ext=image_ext_for(input_dir / test_dir, sub[id_col].tolist()))

    csvs = [p for p in sorted(input_dir.glob("train*.csv"))]
    if csvs:
        train = read_csv(csvs[0], "train csv")
        if id_col not in train.columns:
            raise PipelineError(f"{csvs[0]}: no id column {id_col!r} (the first column of {subs[0].name})")
        train_dir = _first_existing(input_dir, TRAIN_DIRS, "train")
        comp.update(layout="csv", train_csv=csvs[0].name, train_dir=train_dir,
                    train_image_ext=image_ext_for(input_dir / train_dir, train[id_col].tolist()),
                    **_targets(train, id_col, sub_targets, csvs[0]))
    else:
        train_dir = _first_existing(input_dir, TRAIN_DIRS, "train")
        classes = sorted(p.name for p in (input_dir / train_dir).iterdir() if p.is_dir())
        if len(classes) < 2:
            raise PipelineError(f"{input_dir}: no train csv and no train/<class>/ folders")
        fmt = "class_columns" if len(sub_targets) > 1 else "label"
        if fmt == "class_columns":
            classes = sub_targets
        comp.update(layout="folders", train_dir=train_dir, train_image_ext="", target_cols=["label"],
                    task="multiclass", classes=classes, submission_format=fmt,
                    metric="log_loss" if fmt == "class_columns" else "accuracy")
    order = ["layout", "train_csv", "sample_submission", "train_dir", "test_dir", "train_image_ext", "test_image_ext",
             "id_col", "target_cols", "task", "classes", "metric", "submission_format", "submission_columns"]
    return {k: comp[k] for k in order if k in comp}


def write_competition_config(path: Path, input_dir: Path, shown_as=None) -> dict:
    comp = infer_competition(input_dir)
    header = (f"# Inferred from {shown_as or input_dir} on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.\n"
              f"# This file is yours now: edit it (it wins over inference) or delete it to infer again.\n"
              f"# Any other section (folds, model, data, train, loss, predict, stack, runtime) may go here too:\n"
              f"# see the README for the keys.\n")
    atomic_write_text(path, header + yaml.safe_dump({"competition": comp}, sort_keys=False))
    return comp
