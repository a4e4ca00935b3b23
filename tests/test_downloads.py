"""Kaggle downloads as they come (issue 24, first layouts): archives unpacked on first use (zip, 7z, tar: Kaggle's
train.zip holding train/, MLE-bench's of loose files, a zipped csv, statoil's train.json.7z, nested ones), labels in
the file names (dogs vs cats: train/cat.0.jpg, test/1.jpg, P(dog) in the submission), the metric named by a prepared
folder's description.md, and the pipeline end to end on such a download to a submission its grader would accept."""
import io
import re
import tarfile
import zipfile

import numpy as np
import pandas as pd
import py7zr
import pytest

from conftest import COLORS, make_all_here, make_competition, write_png
from foldstack.data.archives import unpack_archives
from foldstack.description import described_metric
from foldstack.discover import discover_competition
from foldstack.errors import PipelineError

DESCRIPTION = """# Overview

Tell cats from dogs.

### Evaluation

Submissions are scored on the log loss between the predicted probability that the image shows a dog and the truth.

### Submission file

id,label
"""


def zip_folder(folder, archive, top: str | None):
    """archive of folder's files: under `top/` (as Kaggle ships train.zip) or loose (as MLE-bench's prepare.py)."""
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(folder.iterdir()):
            z.write(path, f"{top}/{path.name}" if top else path.name)


def dogs_vs_cats(root, kaggle_zips: bool, n_train: int = 24, n_test: int = 6, description: bool = False):
    """A dogs-vs-cats-like download: cat.<n>.png / dog.<n>.png (red cats, green dogs), test/<n>.png, P(dog)."""
    folder, staging = root / "input" / "dvc", root / "staging"
    truth = {}
    for i in range(n_train):
        label = ("cat", "dog")[i % 2]
        write_png(staging / "train" / f"{label}.{i // 2}.png", COLORS[i % 2], seed=i)
    for i in range(1, n_test + 1):
        truth[i] = i % 2
        write_png(staging / "test" / f"{i}.png", COLORS[i % 2], seed=1000 + i)
    folder.mkdir(parents=True)
    for name in ("train", "test"):
        zip_folder(staging / name, folder / f"{name}.zip", name if kaggle_zips else None)
    pd.DataFrame({"id": list(truth), "label": 0.5}).to_csv(folder / "sample_submission.csv", index=False)
    if description:
        (folder / "description.md").write_text(DESCRIPTION)
    return folder, truth


@pytest.mark.parametrize("kaggle_zips", [True, False])
def test_zips_are_unpacked_and_labels_read_from_file_names(tmp_path, kaggle_zips):
    folder, _ = dogs_vs_cats(tmp_path, kaggle_zips)
    comp = discover_competition(folder)
    assert sorted(p.name for p in (folder / "train").iterdir())[:3] == ["cat.0.png", "cat.1.png", "cat.10.png"]
    assert len(list((folder / "train").iterdir())) == 24 and len(list((folder / "test").iterdir())) == 6
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no staging left
    assert comp["layout"] == "filenames" and comp["task"] == "binary" and comp["classes"] == ["cat", "dog"]
    assert comp["submission_format"] == "probability" and comp["metric"] == "roc_auc"  # no description: default
    assert comp["test_image_ext"] == ".png"


def test_a_zipped_csv_becomes_the_csv_and_a_bad_zip_is_one_line_leaving_nothing(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    with zipfile.ZipFile(folder / "train.csv.zip", "w") as z:
        z.writestr("train.csv", "id,label\na,1\n")
    (folder / "test.zip").write_bytes(b"PK\x03\x04 not a zip at all")
    with pytest.raises(PipelineError, match=r"test.zip: cannot unpack it .*download it again") as e:
        discover_competition(folder)
    assert "\n" not in str(e.value)
    assert sorted(p.name for p in folder.iterdir()) == ["test.zip", "train.csv.zip"]  # no half-unpacked test/
    (folder / "test.zip").unlink()
    (folder / "test.7z").write_bytes(b"7z\xbc\xaf\x27\x1c cut short")
    with pytest.raises(PipelineError, match=r"test.7z: cannot unpack it \(Bad7zFile: .*download it again"):
        discover_competition(folder)
    (folder / "test.7z").unlink()
    assert unpack_archives(folder) == ["train.csv"]
    assert (folder / "train.csv").read_text() == "id,label\na,1\n"  # the zipped csv, as the csv


def write_archive(path, entries: dict[str, bytes]) -> None:
    """An archive of `entries` (name -> bytes) in the format its suffix names, as zipfile, py7zr and tarfile write it.
    A name ending in '/' is a folder entry alone (what MLE-bench's empty invasive-species 7z archives hold)."""
    name = path.name
    if name.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as z:
            for entry, data in entries.items():
                z.writestr(entry, data)
    elif name.endswith(".7z"):
        with py7zr.SevenZipFile(path, "w") as z:
            for entry, data in entries.items():
                if entry.endswith("/"):
                    (path.parent.parent / "folder").mkdir(exist_ok=True)  # outside the competition folder
                    z.write(path.parent.parent / "folder", entry.rstrip("/"))
                else:
                    z.writestr(data, entry)
    else:
        mode = {"tar": "w", "gz": "w:gz", "tgz": "w:gz", "bz2": "w:bz2", "xz": "w:xz"}[name.rsplit(".", 1)[1]]
        with tarfile.open(path, mode) as t:
            for entry, data in entries.items():
                info = tarfile.TarInfo(entry)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))


def tree(folder) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


TRAIN = {"a.png": b"\x89PNG one", "sub/b.npy": bytes(range(256)) * 4}


@pytest.mark.parametrize("suffix", [".zip", ".7z", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"])
@pytest.mark.parametrize("top", ["train/", ""])  # Kaggle's archives hold train/, MLE-bench's loose files
def test_each_archive_format_unpacks_to_its_tree_once(tmp_path, suffix, top, caplog):
    write_archive(tmp_path / f"train{suffix}", {top + name: data for name, data in TRAIN.items()})
    with caplog.at_level("INFO", logger="foldstack"):
        assert unpack_archives(tmp_path) == ["train"]
    assert tree(tmp_path / "train") == TRAIN  # byte for byte, under train/ either way
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train", f"train{suffix}"]  # no staging left
    assert f"unpacked train{suffix} -> {tmp_path / 'train'} (2 files)" in caplog.messages
    (tmp_path / "train" / "a.png").unlink()
    assert unpack_archives(tmp_path) == []  # once: train/ is there, even changed
    assert tree(tmp_path / "train") == {"sub/b.npy": TRAIN["sub/b.npy"]}


def test_statoil_like_7z_tables_become_the_files(tmp_path):
    """statoil-iceberg: MLE-bench's train.json.7z holds train.json, Kaggle's own data/processed/test.json."""
    bands = b'[{"id": "a1", "band_1": [0.5], "band_2": [-1.5], "inc_angle": 40.1, "is_iceberg": 1}]'
    write_archive(tmp_path / "train.json.7z", {"train.json": bands})
    write_archive(tmp_path / "test.json.7z", {"data/processed/test.json": b"[]"})
    write_archive(tmp_path / "sample_submission.csv.7z", {"sample_submission.csv": b"id,is_iceberg\na1,0.5\n"})
    assert unpack_archives(tmp_path) == ["sample_submission.csv", "test.json", "train.json"]
    assert (tmp_path / "train.json").read_bytes() == bands and (tmp_path / "test.json").read_bytes() == b"[]"
    assert (tmp_path / "sample_submission.csv").read_text() == "id,is_iceberg\na1,0.5\n"


def test_nested_archives_are_unpacked_inside_and_removed(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("labels.csv", "id,label\na,1\n")
    write_archive(tmp_path / "inner.tar.gz", {"x/c.txt": b"deep"})
    write_archive(tmp_path / "train.zip", {"train/a.png": b"png", "train/labels.csv.zip": inner.getvalue(),
                                           "train/more.tar.gz": (tmp_path / "inner.tar.gz").read_bytes()})
    (tmp_path / "inner.tar.gz").unlink()
    assert unpack_archives(tmp_path) == ["train"]
    assert tree(tmp_path / "train") == {"a.png": b"png", "labels.csv": b"id,label\na,1\n", "more/x/c.txt": b"deep"}


@pytest.mark.parametrize("name,entries,problem", [
    ("train.7z", {"train/": b""}, r"holds no files"),  # MLE-bench's invasive-species public/ (their issue 122)
    ("train.zip", {}, r"holds no files"),
    ("train.7z", {"a.png": b"x", "..\\x": b"escaped"}, r"entry '\.\./x' points outside"),  # made on Windows
    ("train.tar", {"a.png": b"x", "../x": b"escaped"}, r"entry '\.\./x' points outside"),
    ("train.tar.gz", {"/abs/x": b"escaped"}, r"entry '/abs/x' points outside"),
    ("train.zip", {"ok/a.png": b"x", "ok/inner.7z": b"7z\xbc\xaf\x27\x1c cut"},
     r"ok/inner.7z: cannot unpack it \(Bad7zFile"),  # a nested one, named inside its archive
])
def test_an_archive_that_escapes_fails_or_holds_nothing_is_one_line_leaving_nothing(tmp_path, name, entries, problem):
    folder = tmp_path / "c"
    folder.mkdir()
    write_archive(folder / name, entries)
    with pytest.raises(PipelineError, match=rf"^{re.escape(str(folder / name))}: {problem}") as e:
        unpack_archives(folder)
    assert "\n" not in str(e.value)
    assert sorted(p.name for p in folder.iterdir()) == [name]  # no target, no staging folder
    assert not (tmp_path / "x").exists() and not (folder / "x").exists()


def test_a_corrupt_tar_is_one_line_leaving_nothing(tmp_path):
    write_archive(tmp_path / "test.tar.gz", {"test/a.png": b"x" * 5000})
    data = (tmp_path / "test.tar.gz").read_bytes()
    (tmp_path / "test.tar.gz").write_bytes(data[: len(data) // 2])  # an interrupted download
    with pytest.raises(PipelineError, match=r"test.tar.gz: cannot unpack it \(\w+: .*\): download it again"):
        unpack_archives(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.tar.gz"]


@pytest.mark.parametrize("text,task,metric", [
    ("## Evaluation\nSubmissions are evaluated on **MeanFScore**, which at Kaggle is a micro-averaged F1.", "multiclass",
     "micro_f1"),
    ("## Evaluation\n\nScored on the quadratic weighted kappa between ratings.\n## Timeline\naccuracy", "multiclass",
     "qwk"),
    ("### Evaluation\nThe metric is the [area under the ROC curve](http://x) of the predicted probability.", "binary",
     "roc_auc"),
    ("## Evaluation\nSubmissions are evaluated using the macro F1 score.", "multiclass", "macro_f1"),
    ("## Evaluation\nSubmissions are evaluated on mean column-wise ROC AUC.", "multilabel", "roc_auc"),
    ("#### Evaluation\nbased on their categorization accuracy", "multiclass", "accuracy"),
    ("## Evaluation\nthe multi-class logarithmic loss", "multiclass", "log_loss"),
    ("## Evaluation\nthe quadratic weighted kappa", "multilabel", None),  # not a multilabel metric: the default
    ("## Overview\nlog loss, but no evaluation section", "binary", None),
])
def test_the_metric_named_by_the_evaluation_section(text, task, metric):
    found = described_metric(text, task)
    assert (found[0] if found else None) == metric


@pytest.mark.slow  # trains through the stage scripts in this process (run_here), which the markers cannot see
def test_make_all_on_a_prepared_download_gives_a_submission_its_grader_accepts(project):
    _, truth = dogs_vs_cats(project, kaggle_zips=False, n_train=36, description=True)
    runs = make_all_here(project, "dvc", "train.epochs=3", "predict.tta=[]")
    config = (project / "configs" / "dvc.yaml").read_text()
    assert "layout: filenames" in config and "metric: log_loss" in config and "- cat\n  - dog" in config
    assert "OOF CV log_loss: " in runs["03_predict.py"].stderr
    sub = pd.read_csv(project / "submission.csv")
    # what the grader checks: the columns, the ids of the sample, probabilities in [0, 1]
    assert list(sub.columns) == ["id", "label"] and sorted(sub["id"]) == sorted(truth)
    assert sub["label"].between(0, 1).all()
    p = sub.set_index("id")["label"].reindex(list(truth)).to_numpy()
    y = np.array(list(truth.values()))
    assert ((p > 0.5) == y).mean() >= 5 / 6  # red cats, green dogs: learned, P(dog) the column written


def test_labels_csv_is_the_train_table(tmp_path):
    """dog-breed-identification: labels.csv (id, breed), one probability column per breed in the sample."""
    folder = make_competition(tmp_path, "breeds", "class_columns")
    (folder / "train.csv").rename(folder / "labels.csv")
    comp = discover_competition(folder)
    assert comp["train_csv"] == "labels.csv" and comp["target_cols"] == ["label"]
    assert comp["task"] == "multiclass" and comp["submission_format"] == "class_columns" and comp["metric"] == "log_loss"


def test_images_found_one_level_down_and_patients_grouped(tmp_path):
    """siim-isic-melanoma-classification: train/ and test/ hold DICOM, the JPEGs are in jpeg/train and jpeg/test;
    patient_id repeats, so the folds must group by it."""
    folder = tmp_path / "isic"
    rows = []
    for split, n in (("train", 12), ("test", 4)):
        for i in range(n):
            name = f"ISIC_{split}{i:03d}"
            (folder / split).mkdir(parents=True, exist_ok=True)
            (folder / split / f"{name}.dcm").write_bytes(b"DICM")
            write_png(folder / "jpeg" / split / f"{name}.jpg", COLORS[i % 2], seed=i)
            rows.append((split, name, f"IP_{i // 3}", i % 2))
    frame = pd.DataFrame(rows, columns=["split", "image_name", "patient_id", "target"])
    frame[frame.split == "train"].drop(columns="split").to_csv(folder / "train.csv", index=False)
    frame[frame.split == "test"][["image_name"]].assign(target=0.0).to_csv(folder / "sample_submission.csv",
                                                                           index=False)
    comp = discover_competition(folder)
    assert (comp["train_dir"], comp["test_dir"]) == ("jpeg/train", "jpeg/test")
    assert comp["train_image_ext"] == comp["test_image_ext"] == ".jpg"
    assert comp["group_col"] == "patient_id" and comp["task"] == "binary" and comp["target_cols"] == ["target"]
    # a patient column without repeats groups nothing: no group_col
    frame.loc[frame.split == "train", "patient_id"] = [f"IP_{i}" for i in range(12)]
    frame[frame.split == "train"].drop(columns="split").to_csv(folder / "train.csv", index=False)
    assert "group_col" not in discover_competition(folder)


def table_download(folder, train: pd.DataFrame, sample: pd.DataFrame, train_dir: str, test_dir: str, ext: str,
                   id_col: str, description: str = ""):
    """A csv download: the train table, the sample submission, one image per id (ids without the suffix)."""
    for frame, sub in ((train, train_dir), (sample, test_dir)):
        for i, ident in enumerate(frame[id_col]):
            write_png(folder / sub / f"{ident}{ext}", COLORS[i % 4], seed=i)
    train.to_csv(folder / "train.csv", index=False)
    sample.to_csv(folder / "sample_submission.csv", index=False)
    if description:
        (folder / "description.md").write_text(description)
    return folder


def test_aptos_like_ratings_are_multiclass_scored_by_kappa(tmp_path):
    """aptos2019-blindness-detection: id_code without .png, diagnosis 0-4 in train_images/ and test_images/."""
    train = pd.DataFrame({"id_code": [f"a{i:03d}" for i in range(20)], "diagnosis": [i % 5 for i in range(20)]})
    sample = pd.DataFrame({"id_code": [f"t{i:03d}" for i in range(5)], "diagnosis": 0})
    folder = table_download(tmp_path / "aptos", train, sample, "train_images", "test_images", ".png", "id_code",
                            "## Evaluation\n\nSubmissions are scored based on the quadratic weighted kappa.\n")
    comp = discover_competition(folder)
    assert (comp["train_dir"], comp["test_dir"], comp["train_image_ext"]) == ("train_images", "test_images", ".png")
    assert comp["task"] == "multiclass" and comp["classes"] == ["0", "1", "2", "3", "4"] and comp["metric"] == "qwk"


def test_plant_pathology_like_one_hot_columns_in_one_images_folder_scored_by_column_wise_auc(tmp_path):
    """plant-pathology-2020-fgvc7: one images/ folder for train and test, one-hot columns, mean column-wise AUC."""
    classes = ["healthy", "multiple_diseases", "rust", "scab"]
    train = pd.DataFrame({"image_id": [f"Train_{i}" for i in range(16)],
                          **{c: [int(i % 4 == k) for i in range(16)] for k, c in enumerate(classes)}})
    sample = pd.DataFrame({"image_id": [f"Test_{i}" for i in range(4)], **{c: 0.25 for c in classes}})
    folder = table_download(tmp_path / "pp", train, sample, "images", "images", ".jpg", "image_id",
                            "## Evaluation\n\nSubmissions are evaluated on mean column-wise ROC AUC.\n")
    comp = discover_competition(folder)
    assert comp["train_dir"] == comp["test_dir"] == "images" and comp["target_cols"] == classes
    assert comp["submission_format"] == "class_columns" and comp["metric"] == "roc_auc"


def test_a_kaggle_download_without_description_gets_its_competitions_metric_by_slug(tmp_path):
    """aptos2019-blindness-detection as Kaggle serves it (no description.md): quadratic weighted kappa, not the
    multiclass default (accuracy); the same folder under another name keeps the default."""
    folder = make_competition(tmp_path, "aptos2019-blindness-detection", "label", classes=("0", "1", "2", "3"))
    assert discover_competition(folder)["metric"] == "qwk"
    assert discover_competition(folder.rename(folder.with_name("my-retina-copy")))["metric"] == "accuracy"
