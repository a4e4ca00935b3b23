"""Train and test layouts beyond "one image per id in a folder": a train folder without a table (a folder per
class, or the label in each file's name: dogs-vs-cats' cat.0.jpg), a folder named by the row's label in the path
(paddy-disease-classification: train.csv beside train_images/<label>/<image_id>) and COCO-style JSON metadata as the
train table (herbarium-2022-fgvc9: train_metadata.json's images and annotations; test_metadata.json naming each
test id's file). Discovery (discover.py) calls these; data/table.py reads the JSON rows with `metadata_table`."""
import json
import logging
import re
import string
from pathlib import Path

import pandas as pd

from .errors import PipelineError

log = logging.getLogger("foldstack")

TRAIN_METADATA, TEST_METADATA = "train_metadata.json", "test_metadata.json"
PATH_COLUMN = "file_name"  # COCO's image path column, relative to the image folder


def fill_path(template: str, frame: pd.DataFrame, source: str, key: str = "train_path") -> list[str]:
    """Each row's image path from competition.train_path or test_path (`{label}/{image_id}`, SETI's
    `{id[0]}/{id}`: a folder named by the id's first character): the template's fields filled from the row's
    columns; a field naming no column is one line."""
    fields = sorted({re.split(r"[.\[]", f)[0] for _, f, _, _ in string.Formatter().parse(template) if f})
    missing = [f for f in fields if f not in frame.columns]
    if missing:
        raise PipelineError(f"competition.{key} {template!r}: no column {missing[0]!r} in {source}")
    return [template.format_map(row) for row in frame[fields].to_dict("records")]


def train_images(input_dir: Path, train: pd.DataFrame, id_col: str, target_cols: list[str], image_folder,
                 train_dirs) -> dict:
    """train_dir and train_image_ext of a train csv's images: named by the ids in a train folder, else in a folder
    per label (`train_images/<label>/<id>`: competition.train_path `{label}/{id}`); else the first one's refusal."""
    try:
        train_dir, ext = image_folder(input_dir, train_dirs, train[id_col].tolist(), "train")
        return dict(train_dir=train_dir, train_image_ext=ext)
    except PipelineError as plain:
        if len(target_cols) != 1:
            raise
        template = f"{{{target_cols[0]}}}/{{{id_col}}}"
        try:
            train_dir, ext = image_folder(input_dir, train_dirs, fill_path(template, train, "train csv"), "train")
        except PipelineError:
            raise plain from None
    log.info(f"competition.train_path: {template!r}: the train images are in {train_dir}/<{target_cols[0]}>/, a "
             f"folder named by each row's label")
    return dict(train_dir=train_dir, train_path=template, train_image_ext=ext)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PipelineError(f"{path}: not a readable JSON file ({e})") from None


def _records(data, key: str, path: Path, columns: list[str]) -> pd.DataFrame:
    rows = data.get(key) if isinstance(data, dict) else data if key == "images" else None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise PipelineError(f"{path}: expected a non-empty list of objects under {key!r}")
    frame = pd.DataFrame(rows)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PipelineError(f"{path}: the {key} have no {missing[0]!r}")
    return frame


def metadata_table(path: Path, id_col: str) -> pd.DataFrame:
    """The train rows of a COCO-style metadata file: its `images` (image_id, file_name) joined on image_id with its
    `annotations` (category_id and the other ids: genus, institution), as strings (an image without annotation: an
    empty category, refused or dropped like an empty CSV cell), image_id named id_col (the sample submission's)."""
    data = _read_json(path)
    images = _records(data, "images", path, ["image_id", PATH_COLUMN])[["image_id", PATH_COLUMN]]
    notes = _records(data, "annotations", path, ["image_id", "category_id"]).drop(columns="id", errors="ignore")
    images, notes = images.astype(str), notes.astype(str)  # before the join: an unmatched image's NaN stays alone
    twice = notes["image_id"][notes["image_id"].duplicated()]
    if len(twice):
        raise PipelineError(f"{path}: image_id {twice.iloc[0]!r} has several annotations (one label per image)")
    table = images.merge(notes, on="image_id", how="left").fillna("")
    return table.rename(columns={"image_id": id_col})


def test_file_names(path: Path) -> dict[str, str]:
    """image_id -> file_name of a test metadata file (a list of images, or COCO's {"images": [...]})."""
    images = _records(_read_json(path), "images", path, ["image_id", PATH_COLUMN])
    return dict(zip(images["image_id"].astype(str), images[PATH_COLUMN].astype(str)))


def test_names(test_json: Path, ids, source: str) -> list[str]:
    """The file names of the sample submission's ids, from the test metadata; an id it lacks is one line."""
    names = test_file_names(test_json)
    missing = [i for i in map(str, ids) if i not in names]
    if missing:
        raise PipelineError(f"{source}: id {missing[0]!r} is not in {test_json.name}"
                            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return [names[str(i)] for i in ids]


def json_metadata_layout(input_dir: Path, sub: pd.DataFrame, id_col: str, image_folder, train_dirs,
                         test_dirs) -> tuple[dict, pd.DataFrame] | None:
    """(layout keys, train rows) of a folder with COCO-style train_metadata.json (None without one): train rows from
    the JSON, paths from its file_name, test files from test_metadata.json (else the ids); target category_id."""
    train_json, test_json = input_dir / TRAIN_METADATA, input_dir / TEST_METADATA
    if not train_json.is_file():
        return None
    train = metadata_table(train_json, id_col)
    comp = dict(layout="csv", train_metadata=TRAIN_METADATA, target_cols=["category_id"],
                train_path=f"{{{PATH_COLUMN}}}")
    comp["train_dir"], comp["train_image_ext"] = image_folder(input_dir, train_dirs, train[PATH_COLUMN].tolist(),
                                                              "train")
    ids = sub[id_col].astype(str).tolist()
    if test_json.is_file():
        comp["test_metadata"] = TEST_METADATA
        ids = test_names(test_json, ids, "sample submission")
    comp["test_dir"], comp["test_image_ext"] = image_folder(input_dir, test_dirs, ids, "test")
    log.info(f"competition.train_metadata: {TRAIN_METADATA} (COCO-style images + annotations) is the train table: "
             f"{len(train)} rows, id image_id, target category_id, path {PATH_COLUMN} under {comp['train_dir']}/"
             + (f"; test files named by {TEST_METADATA}" if test_json.is_file() else ""))
    return comp, train


def labels_in_file_names(folder: Path) -> list[str] | None:
    """The labels of a train folder whose files are named `<label>.<n>.<ext>` (dogs vs cats: cat.0.jpg), sorted;
    None when the names hold no such labels (fewer than two, numbers, or about one file each)."""
    from .discover import IMAGE_EXTS
    from .discover_targets import sort_classes

    files = [p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS]
    prefixes = [name.split(".")[0] for name in files if name.count(".") >= 2]
    labels = sort_classes(prefixes)
    if len(prefixes) < len(files) or not 2 <= len(labels) <= len(files) // 2:
        return None
    if pd.to_numeric(pd.Series(labels), errors="coerce").notna().any():
        return None
    return labels


def unlabeled_folder(input_dir: Path, train_dir: str, sub: pd.DataFrame, sub_targets: list[str]) -> dict:
    """A train folder without a csv: a folder per class, or labels in the file names."""
    from .discover_targets import sort_classes

    folder = input_dir / train_dir
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    layout = "folders"
    if len(classes) < 2:
        classes, layout = labels_in_file_names(folder), "filenames"
        if classes is None:
            raise PipelineError(f"{input_dir}: no train csv, no train/<class>/ folders and no labels in the file "
                                f"names (<label>.<n>.jpg)")
    comp = dict(layout=layout, train_dir=train_dir, train_image_ext="", target_cols=["label"])
    probabilities = pd.to_numeric(sub[sub_targets[0]], errors="coerce").notna().all()
    if len(classes) == 2 and len(sub_targets) == 1 and probabilities:  # P(the second class), e.g. P(dog)
        return dict(comp, task="binary", classes=classes, metric="roc_auc", submission_format="probability")
    fmt = "class_columns" if len(sub_targets) > 1 else "label"
    return dict(comp, task="multiclass", classes=sub_targets if fmt == "class_columns" else classes,
                submission_format=fmt, metric="log_loss" if fmt == "class_columns" else "accuracy")
