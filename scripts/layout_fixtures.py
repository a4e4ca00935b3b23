"""Tiny replicas of Kaggle image competitions' raw downloads, for scripts/survey_layouts.py: the real file and
folder names, columns, file types and shapes (read from MLE-bench's prepare.py for each), a few generated images.
Each builder writes one download into an empty folder; layout_fixtures_sources.py holds those whose pixels are not
image files (DICOM, .npy, JSON bands, pixels in a CSV, one file per channel)."""
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd


def hexid(seed, n=32) -> str:
    return hashlib.md5(str(seed).encode()).hexdigest()[:n]


def image(path: Path, seed: int, size: int = 24, gray: bool = False) -> None:
    """A random image in the format its suffix names (jpg, png, tif)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size, size) if gray else (size, size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), pixels)


def csv(path: Path, frame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(frame).to_csv(path, index=False)


def pack(folder: Path, name: str, archive: str) -> None:
    """Moves folder/name (a file or a folder) into folder/archive (.zip or .7z), entries named from `name` down."""
    import py7zr

    target = folder / name
    files = sorted(p for p in ([target] if target.is_file() else target.rglob("*")) if p.is_file())
    if archive.endswith(".7z"):
        with py7zr.SevenZipFile(folder / archive, "w") as z:
            for f in files:
                z.write(f, f.relative_to(folder).as_posix())
    else:
        with zipfile.ZipFile(folder / archive, "w") as z:
            for f in files:
                z.write(f, f.relative_to(folder).as_posix())
    shutil.rmtree(target) if target.is_dir() else target.unlink()


def _files(folder: Path, names, ext="", size=24, seed=0, gray=False):
    for i, n in enumerate(names):
        image(folder / f"{n}{ext}", seed + i, size, gray)


def aerial_cactus(d):
    train, test = [f"{hexid(i)}.jpg" for i in range(20)], [f"{hexid(100 + i)}.jpg" for i in range(6)]
    _files(d / "train", train, size=32), _files(d / "test", test, size=32, seed=100)
    csv(d / "train.csv", {"id": train, "has_cactus": [i % 2 for i in range(20)]})
    csv(d / "sample_submission.csv", {"id": test, "has_cactus": 0.5})
    pack(d, "train", "train.zip"), pack(d, "test", "test.zip")


def dogs_vs_cats(d):
    _files(d / "train", [f"{'cat' if i % 2 else 'dog'}.{i // 2}.jpg" for i in range(20)], size=32)
    _files(d / "test", [f"{i}.jpg" for i in range(1, 7)], seed=100)
    csv(d / "sample_submission.csv", {"id": range(1, 7), "label": 0.5})
    pack(d, "train", "train.zip"), pack(d, "test", "test.zip")


def _class_columns(d, table_name, id_col, label_col, classes, used, n_train=20, ids=None, extra=None, ext=".jpg",
                   folder="train", test_folder="test"):
    ids = ids or [hexid(i) for i in range(n_train + 6)]
    _files(d / folder, ids[:n_train], ext), _files(d / test_folder, ids[n_train:], ext, seed=100)
    train = {id_col: ids[:n_train], label_col: [used[i % len(used)] for i in range(n_train)], **(extra or {})}
    csv(d / table_name, train)
    csv(d / "sample_submission.csv", {id_col: ids[n_train:], **{c: 1 / len(classes) for c in classes}})
    return ids


def dog_breed(d):
    breeds = ["affenpinscher", "afghan_hound", "african_hunting_dog", "airedale"] + [f"breed_{i:03d}"
                                                                                     for i in range(116)]
    _class_columns(d, "labels.csv", "id", "breed", breeds, breeds[:4])


def histopathologic(d):
    ids = [hexid(i, 40) for i in range(26)]
    _files(d / "train", ids[:20], ".tif", size=32), _files(d / "test", ids[20:], ".tif", size=32, seed=100)
    csv(d / "train_labels.csv", {"id": ids[:20], "label": [i % 2 for i in range(20)]})
    csv(d / "sample_submission.csv", {"id": ids[20:], "label": 0})


def plant_pathology_2020(d):
    cols, train, test = ["healthy", "multiple_diseases", "rust", "scab"], [f"Train_{i}" for i in range(20)], \
        [f"Test_{i}" for i in range(6)]
    _files(d / "images", train + test, ".jpg")
    csv(d / "train.csv", {"image_id": train, **{c: [int(i % 4 == k) for i in range(20)] for k, c in enumerate(cols)}})
    csv(d / "test.csv", {"image_id": test})
    csv(d / "sample_submission.csv", {"image_id": test, **{c: 0.25 for c in cols}})


def plant_pathology_2021(d):
    labels = ["healthy", "scab", "rust", "complex", "frog_eye_leaf_spot", "powdery_mildew", "scab frog_eye_leaf_spot",
              "rust frog_eye_leaf_spot", "frog_eye_leaf_spot complex", "scab frog_eye_leaf_spot complex"]
    ids = [f"{hexid(i, 16)}.jpg" for i in range(26)]
    _files(d / "train_images", ids[:20]), _files(d / "test_images", ids[20:], seed=100)
    csv(d / "train.csv", {"image": ids[:20], "labels": [labels[i % 10] for i in range(20)]})
    csv(d / "sample_submission.csv", {"image": ids[20:], "labels": "healthy"})


def aptos(d):
    ids = [hexid(i, 12) for i in range(26)]
    _files(d / "train_images", ids[:20], ".png"), _files(d / "test_images", ids[20:], ".png", seed=100)
    csv(d / "train.csv", {"id_code": ids[:20], "diagnosis": [i % 5 for i in range(20)]})
    csv(d / "test.csv", {"id_code": ids[20:]})
    csv(d / "sample_submission.csv", {"id_code": ids[20:], "diagnosis": 0})


RANZCR = ["ETT - Abnormal", "ETT - Borderline", "ETT - Normal", "NGT - Abnormal", "NGT - Borderline",
          "NGT - Incompletely Imaged", "NGT - Normal", "CVC - Abnormal", "CVC - Borderline", "CVC - Normal",
          "Swan Ganz Catheter Present"]


def ranzcr(d):
    ids = [f"1.2.826.0.1.3680043.8.498.{10 ** 37 + i}" for i in range(26)]
    _files(d / "train", ids[:20], ".jpg"), _files(d / "test", ids[20:], ".jpg", seed=100)
    cols = {c: [int((i + j) % 2 == 0) for i in range(20)] for j, c in enumerate(RANZCR)}
    csv(d / "train.csv", {"StudyInstanceUID": ids[:20], **cols, "PatientID": [f"ec{i // 2:07x}" for i in range(20)]})
    csv(d / "train_annotations.csv", {"StudyInstanceUID": ids[:2], "label": "CVC - Normal", "data": "[[1, 2]]"})
    csv(d / "sample_submission.csv", {"StudyInstanceUID": ids[20:], **{c: 0 for c in RANZCR}})


def leaf(d):
    species = ["Acer_Capillipes", "Acer_Circinatum", "Acer_Mono", "Acer_Opalus"] + [f"Species_{i:02d}"
                                                                                    for i in range(95)]
    ids = list(range(1, 27))
    _files(d / "images", ids, ".jpg", gray=True)
    features = {f"{k}{n}": np.round(np.random.default_rng(n).random(26) / 50, 6) for k in ("margin", "shape",
                                                                                          "texture")
                for n in range(1, 65)}
    csv(d / "train.csv", {"id": ids[:20], "species": [species[i % 4] for i in range(20)],
                          **{k: v[:20] for k, v in features.items()}})
    csv(d / "test.csv", {"id": ids[20:], **{k: v[20:] for k, v in features.items()}})
    csv(d / "sample_submission.csv", {"id": ids[20:], **{s: 1 / 99 for s in species}})
    for name in ("train.csv", "test.csv", "sample_submission.csv", "images"):
        pack(d, name, f"{name}.zip")


def cassava(d):
    ids = [f"{1000015157 + 7919 * i}.jpg" for i in range(26)]
    _files(d / "train_images", ids[:20]), _files(d / "test_images", ids[20:], seed=100)
    csv(d / "train.csv", {"image_id": ids[:20], "label": [i % 5 for i in range(20)]})
    csv(d / "sample_submission.csv", {"image_id": ids[20:], "label": 4})
    (d / "label_num_to_disease_map.json").write_text(json.dumps(
        {"0": "Cassava Bacterial Blight (CBB)", "1": "Cassava Brown Streak Disease (CBSD)",
         "2": "Cassava Green Mottle (CGM)", "3": "Cassava Mosaic Disease (CMD)", "4": "Healthy"}))
    for folder in ("train_tfrecords", "test_tfrecords"):
        (d / folder).mkdir()
        (d / folder / "ld_train00-1338.tfrec").write_bytes(b"\0" * 16)


def plant_seedlings(d):
    species = ["Black-grass", "Charlock", "Common Chickweed", "Sugar beet"]
    for i in range(20):
        image(d / "train" / species[i % 4] / f"{hexid(i, 9)}.png", i)
    test = [f"{hexid(100 + i, 9)}.png" for i in range(6)]
    _files(d / "test", test, seed=100)
    csv(d / "sample_submission.csv", {"file": test, "species": "Sugar beet"})


def paddy(d):
    labels = ["bacterial_leaf_blight", "blast", "normal", "tungro"]
    rows = [(f"{100330 + i}.jpg", labels[i % 4]) for i in range(20)]
    for i, (name, label) in enumerate(rows):
        image(d / "train_images" / label / name, i)
    test = [f"{200001 + i}.jpg" for i in range(6)]
    _files(d / "test_images", test, seed=100)
    csv(d / "train.csv", {"image_id": [r[0] for r in rows], "label": [r[1] for r in rows], "variety": "ADT45",
                          "age": [45 + i for i in range(20)]})
    csv(d / "sample_submission.csv", {"image_id": test, "label": ""})


def invasive(d):
    _files(d / "train", range(1, 21), ".jpg"), _files(d / "test", range(21, 27), ".jpg", seed=100)
    csv(d / "train_labels.csv", {"name": range(1, 21), "invasive": [i % 2 for i in range(20)]})
    csv(d / "sample_submission.csv", {"name": range(21, 27), "invasive": 0.5})
    pack(d, "train", "train.7z"), pack(d, "test", "test.7z")
    pack(d, "train_labels.csv", "train_labels.csv.zip"), pack(d, "sample_submission.csv", "sample_submission.csv.zip")


def imet(d):
    tags = ["13 51", "13", "51 121 1092", "121", "13 1092", "2 13 51", "2", "51 1092", "121 13", "2 1092"]
    ids = [hexid(i) for i in range(26)]
    _files(d / "train", ids[:20], ".png"), _files(d / "test", ids[20:], ".png", seed=100)
    csv(d / "train.csv", {"id": ids[:20], "attribute_ids": [tags[i % 10] for i in range(20)]})
    csv(d / "labels.csv", {"attribute_id": [2, 13, 51, 121, 1092],
                           "attribute_name": ["culture::a", "culture::b", "tag::c", "tag::d", "tag::e"]})
    csv(d / "sample_submission.csv", {"id": ids[20:], "attribute_ids": "0 1 2"})


def herbarium(d):
    images, notes = [], []
    for n in range(20):
        cat, image_id = n % 4, f"{n % 4:05d}__{n // 4 + 1:03d}"
        file_name = f"{cat // 100:03d}/{cat % 100:02d}/{image_id}.jpg"
        image(d / "train_images" / file_name, n)
        images.append({"image_id": image_id, "file_name": file_name, "license": 0})
        notes.append({"image_id": image_id, "category_id": cat, "genus_id": cat // 2, "institution_id": 0})
    meta = {"annotations": notes, "images": images, "licenses": [{"id": 0, "name": "x", "url": "x"}],
            "categories": [{"category_id": c, "family": "f", "genus": "g", "species": f"s{c}",
                            "scientific_name": f"g s{c}", "authors": "a"} for c in range(4)],
            "genera": [{"genus_id": g, "genus": f"g{g}"} for g in range(2)],
            "institutions": [{"institution_id": 0, "collectionCode": "A"}]}
    (d / "train_metadata.json").write_text(json.dumps(meta, indent=4, sort_keys=True))
    test = [{"image_id": str(i), "file_name": f"{i // 1000:03d}/test-{i:06d}.jpg", "license": 0} for i in range(6)]
    for t in test:
        image(d / "test_images" / t["file_name"], 100 + int(t["image_id"]))
    (d / "test_metadata.json").write_text(json.dumps(test, indent=4, sort_keys=True))
    csv(d / "sample_submission.csv", {"Id": range(6), "Predicted": 0})


PETFINDER = ["Subject Focus", "Eyes", "Face", "Near", "Action", "Accessory", "Group", "Collage", "Human",
             "Occlusion", "Info", "Blur"]


def petfinder(d):
    ids = [hexid(i) for i in range(26)]
    _files(d / "train", ids[:20], ".jpg"), _files(d / "test", ids[20:], ".jpg", seed=100)
    flags = {c: [(i + k) % 2 for i in range(26)] for k, c in enumerate(PETFINDER)}
    csv(d / "train.csv", {"Id": ids[:20], **{c: v[:20] for c, v in flags.items()},
                          "Pawpularity": [1 + (37 * i) % 100 for i in range(20)]})
    csv(d / "test.csv", {"Id": ids[20:], **{c: v[20:] for c, v in flags.items()}})
    csv(d / "sample_submission.csv", {"Id": ids[20:], "Pawpularity": np.round(np.linspace(1, 99, 6), 2)})


def whale(d):
    names = [f"{hexid(i, 9)}.jpg" for i in range(26)]
    _files(d / "train", names[:20]), _files(d / "test", names[20:], seed=100)
    whales = ["new_whale"] * 6 + [f"w_{hexid(200 + i // 2, 7)}" for i in range(10)] + [f"w_{hexid(300 + i, 7)}"
                                                                                      for i in range(4)]
    csv(d / "train.csv", {"Image": names[:20], "Id": whales})
    csv(d / "sample_submission.csv", {"Image": names[20:], "Id": "new_whale w_1287fbc w_98baff9 w_7554f44 w_1eafe46"})
