"""Prediction artifacts (predict and stack stages): probabilities as .npy, the fast format at any scale
(100k rows x 1,000 classes load in well under a second), with CSV copies for people when they are narrow.

A folder holds oof.npy (train rows x outputs), test.npy, folds.npy and, when TTA was used, oof_plain.npy /
test_plain.npy (the identity view alone). With predict.keep_top each of them is (rows, k) probabilities with
<stem>_classes.npy beside it, their class indices (wide.TopProbs). Its manifest records the row count and a hash
of the ids of both tables, so predictions made for other rows are refused instead of silently misaligned.
Torch-free."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .artifacts import read_manifest
from .errors import PipelineError
from .utils.io import atomic_save_npy, atomic_write_csv, load_npy, stable_hash
from .wide import TopProbs

CSV_MAX_OUTPUTS = 50  # wider matrices are written as .npy only (a 1,000-class CSV is slow and huge)
CLASSES_SUFFIX = "_classes"  # oof_classes.npy beside oof.npy: the kept classes of predict.keep_top


@dataclass
class Predictions:
    oof: np.ndarray           # (n_train, n_outputs), or wide.TopProbs (predict.keep_top)
    test: np.ndarray          # (n_test, n_outputs)
    folds: np.ndarray         # (n_train,) the fold whose model predicted each OOF row
    oof_plain: np.ndarray | None = None   # identity view only (when TTA was on)
    test_plain: np.ndarray | None = None


def rows_record(train_ids: list[str], test_ids: list[str]) -> dict:
    """What a manifest keeps about the rows its predictions belong to."""
    return dict(train=len(train_ids), test=len(test_ids), train_ids=stable_hash(list(train_ids)),
                test_ids=stable_hash(list(test_ids)))


def write_predictions(folder: Path, train_ids, test_ids, names: list[str], p: Predictions) -> None:
    folder = Path(folder)
    atomic_save_npy(folder / "folds.npy", np.asarray(p.folds, np.int32))
    for stem, array in (("oof", p.oof), ("test", p.test), ("oof_plain", p.oof_plain), ("test_plain", p.test_plain)):
        if isinstance(array, TopProbs):  # predict.keep_top: (rows, k) probabilities + their class indices
            atomic_save_npy(folder / f"{stem}.npy", array.probs.astype(np.float32))
            atomic_save_npy(folder / f"{stem}{CLASSES_SUFFIX}.npy", array.classes.astype(np.int32))
        elif array is not None:
            atomic_save_npy(folder / f"{stem}.npy", np.asarray(array, np.float32))
    if len(names) <= CSV_MAX_OUTPUTS and not isinstance(p.oof, TopProbs):
        atomic_write_csv(folder / "oof.csv", pd.concat([pd.DataFrame({"id": list(train_ids), "fold": p.folds}),
                                                        pd.DataFrame(p.oof, columns=names)], axis=1))
        atomic_write_csv(folder / "test.csv", pd.concat([pd.DataFrame({"id": list(test_ids)}),
                                                         pd.DataFrame(p.test, columns=names)], axis=1))


def load_predictions(folder: Path, train_ids, test_ids, n_outputs: int) -> Predictions:
    """A prediction folder's matrices, refused (one line) unless they belong to exactly these rows."""
    folder = Path(folder)
    rows = read_manifest(folder).get("rows")
    expected = rows_record(train_ids, test_ids)
    if rows is None:
        raise PipelineError(f"{folder}: no row record in its manifest (made by an older version): rerun make oof")
    for part in ("train", "test"):
        if rows[f"{part}_ids"] != expected[f"{part}_ids"]:
            raise PipelineError(f"{folder}: predictions were made for other {part} rows "
                                f"({rows[part]} rows, ids differ from the competition's {expected[part]})")

    def load(stem, n, optional=False):
        if optional and not (folder / f"{stem}.npy").is_file():
            return None
        array = load_npy(folder / f"{stem}.npy", "predictions")
        classes = folder / f"{stem}{CLASSES_SUFFIX}.npy"
        if stem != "folds" and classes.is_file():  # each row's best classes (predict.keep_top, wide.py)
            index = load_npy(classes, "predictions")
            if array.shape != index.shape or array.ndim != 2 or len(array) != n:
                raise PipelineError(f"{folder / stem}.npy: shape {array.shape} and {classes.name} {index.shape}, "
                                    f"expected ({n}, k) each")
            if index.size and (index.min() < 0 or index.max() >= n_outputs):
                raise PipelineError(f"{classes}: class indices outside 0..{n_outputs - 1}")
            return TopProbs(index, array, n_outputs)
        if array.shape != ((n,) if stem == "folds" else (n, n_outputs)):
            raise PipelineError(f"{folder / stem}.npy: shape {array.shape}, expected ({n}, {n_outputs})")
        return array  # float32: half the memory at 100k x 1,000; metrics and blends upcast as they need

    n_train, n_test = len(train_ids), len(test_ids)
    return Predictions(oof=load("oof", n_train), test=load("test", n_test), folds=load("folds", n_train),
                       oof_plain=load("oof_plain", n_train, True), test_plain=load("test_plain", n_test, True))
