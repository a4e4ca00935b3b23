"""One download per input family, laid out in the real competition's names and shapes with tiny generated data,
through the stage scripts as `make all` runs them (in this process: run_here) with no edit to the inferred config;
each submission is scored by a scorer written here from the competition's evaluation text.

Families: pixels in a CSV (digit-recognizer), JSON band lists in 7z archives (statoil-iceberg-classifier-challenge),
one PNG per channel (human-protein-atlas-image-classification), float16 .npy in folders named by the id's first
character (seti-breakthrough-listen), DICOM with a patient column (an RSNA-style download), 16-bit TIFFs."""
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import TINY, make_all_here, run_here
from test_sources import write_dicom

pytestmark = pytest.mark.slow  # trains through the stage scripts in this process (run_here)

RUN_ALL = ("train.epochs=6", "train.lr=0.003", "data.img_size=16", "predict.tta=[]")  # with conftest's TINY


def run_all(project: Path, comp: str, *overrides) -> str:
    """The stages of `make all` with the tiny settings; the inferred config as discovery wrote it, and the folds
    stage's log."""
    runs = make_all_here(project, comp, *RUN_ALL, *overrides)
    return (project / "configs" / f"{comp}.yaml").read_text() + runs["01_folds.py"].stderr


def roc_auc(y, p) -> float:
    """The probability that a random positive scores above a random negative (ties count half)."""
    pos, neg = p[y == 1], p[y == 0]
    return float(((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg)))


def test_digit_recognizer_pixels_in_a_csv(project):
    """train.csv = label,pixel0..pixel783; test.csv = the pixels alone; submission ImageId (1-based row),Label."""
    folder, rng = project / "input" / "digits28", np.random.default_rng(10)
    folder.mkdir(parents=True)
    labels = np.arange(48) % 3
    test_labels = np.arange(15) % 3

    def pixels(y):  # digit k: a wide stroke of brightness 60 + 90 k on black
        images = rng.integers(0, 30, (len(y), 28, 28))
        for i, k in enumerate(y):
            images[i, 4:24, 4:24] += 60 + 90 * k
        return images.reshape(len(y), -1).clip(0, 255)

    cols = [f"pixel{i}" for i in range(784)]
    pd.DataFrame(pixels(labels), columns=cols).assign(label=labels)[["label", *cols]].to_csv(folder / "train.csv",
                                                                                              index=False)
    pd.DataFrame(pixels(test_labels), columns=cols).to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"ImageId": range(1, 16), "Label": 0}).to_csv(folder / "sample_submission.csv", index=False)
    config = run_all(project, "digits28", "train.epochs=10")
    assert "image_source: table" in config and "in_chans: 1" in config and "- 28\n  - 28" in config
    sub = pd.read_csv(project / "submission.csv")
    assert list(sub.columns) == ["ImageId", "Label"] and sub["ImageId"].tolist() == list(range(1, 16))
    assert (sub["Label"].to_numpy() == test_labels).mean() >= 0.8  # categorization accuracy


def test_statoil_json_bands_in_7z_archives(project):
    """train.json.7z / test.json.7z / sample_submission.csv.7z as MLE-bench ships them; two 75 x 75 float bands in
    dB and inc_angle ('na' sometimes); scored by log loss."""
    import py7zr

    folder, rng = project / "input" / "iceberg", np.random.default_rng(11)
    folder.mkdir(parents=True)

    def records(n, offset):
        out = []
        for i in range(n):
            iceberg = i % 2
            band = rng.normal(-25, 3, (75, 75))
            band[30:45, 30:45] += 12 if iceberg else 0  # a bright berg
            out.append(dict(id=f"{offset + i:08x}", band_1=band.round(2).ravel().tolist(),
                            band_2=(band - 6 + rng.normal(0, 1, band.shape)).round(2).ravel().tolist(),
                            inc_angle="na" if i % 7 == 0 else 38.5, is_iceberg=iceberg))
        return out

    train, test = records(40, 0), records(12, 1000)
    truth = np.array([r.pop("is_iceberg") for r in test])
    staged = project / "staged"
    staged.mkdir()
    (staged / "train.json").write_text(json.dumps(train))
    (staged / "test.json").write_text(json.dumps(test))
    pd.DataFrame({"id": [r["id"] for r in test], "is_iceberg": 0.5}).to_csv(staged / "sample_submission.csv",
                                                                          index=False)
    for name in ("train.json", "test.json", "sample_submission.csv"):
        with py7zr.SevenZipFile(folder / f"{name}.7z", "w") as archive:
            archive.write(staged / name, arcname=name)
    (folder / "description.md").write_text("## Evaluation\nSubmissions are evaluated on the log loss between the "
                                           "predicted values and the ground truth.\n")
    config = run_all(project, "iceberg")
    assert "image_source: table" in config and "- band_1\n  - band_2" in config and "metric: log_loss" in config
    assert "in_chans: 2" in config
    sub = pd.read_csv(project / "submission.csv").set_index("id").loc[[r["id"] for r in test]]
    p = sub["is_iceberg"].clip(1e-15, 1 - 1e-15).to_numpy()
    log_loss = -np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p))
    assert log_loss < np.log(2) - 0.05  # better than the sample's 0.5 everywhere


def test_protein_atlas_one_png_per_channel(project):
    """train.csv = Id,Target (space-separated class numbers), train/{Id}_{red,green,blue,yellow}.png; submission
    Id,Predicted; scored by macro F1."""
    folder, rng = project / "input" / "hpa", np.random.default_rng(12)
    colours = ("red", "green", "blue", "yellow")

    def write(split, n):
        ids, tags = [f"{split}{i:04d}-ab" for i in range(n)], []
        for i, name in enumerate(ids):
            present = [k for k in range(3) if (i >> k) & 1] or [i % 3]
            tags.append(" ".join(map(str, present)))
            for c, colour in enumerate(colours):  # class k glows in channel k (yellow: the cell outline)
                plane = rng.integers(0, 50, (24, 24)) + (170 if c in present else 0)
                (folder / split).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(folder / split / f"{name}_{colour}.png"), plane.clip(0, 255).astype(np.uint8))
        return ids, tags

    train_ids, train_tags = write("train", 48)
    test_ids, test_tags = write("test", 14)
    pd.DataFrame({"Id": train_ids, "Target": train_tags}).to_csv(folder / "train.csv", index=False)
    pd.DataFrame({"Id": test_ids, "Predicted": "0"}).to_csv(folder / "sample_submission.csv", index=False)
    (folder / "description.md").write_text("## Evaluation\nSubmissions will be evaluated based on their macro F1 "
                                           "score.\n")
    config = run_all(project, "hpa")
    assert "image_source: channel_files" in config and "- _red.png\n  - _green.png" in config
    assert "in_chans: 4" in config and "metric: macro_f1" in config and "task: multilabel" in config
    sub = pd.read_csv(project / "submission.csv", keep_default_na=False).set_index("Id").loc[test_ids]
    f1s = []
    for k in "012":
        pred = np.array([k in str(t).split() for t in sub["Predicted"]])
        true = np.array([k in t.split() for t in test_tags])
        tp = (pred & true).sum()
        f1s.append(2 * tp / max(pred.sum() + true.sum(), 1))
    assert np.mean(f1s) >= 0.7


def test_seti_float16_arrays_in_first_character_folders(project):
    """train/<id[0]>/<id>.npy of float16 (6, 273, 256) cadences (here 6 x 32 x 32), train_labels.csv id,target;
    scored by ROC AUC."""
    folder, rng = project / "input" / "seti", np.random.default_rng(13)

    def write(split, n, offset):
        ids = [f"{'0a1b2c3d4e5f'[i % 12]}{offset + i:07x}" for i in range(n)]
        targets = np.arange(n) % 2
        for name, target in zip(ids, targets):
            cadence = rng.normal(0, 1, (6, 32, 32))
            if target:  # a narrow-band signal in the ON cadences (0, 2, 4)
                cadence[[0, 2, 4], :, 14:18] += 2.5
            (folder / split / name[0]).mkdir(parents=True, exist_ok=True)
            np.save(folder / split / name[0] / f"{name}.npy", cadence.astype(np.float16))
        return ids, targets

    train_ids, train_y = write("train", 40, 0)
    test_ids, test_y = write("test", 12, 500)
    pd.DataFrame({"id": train_ids, "target": train_y}).to_csv(folder / "train_labels.csv", index=False)
    pd.DataFrame({"id": test_ids, "target": 0.5}).to_csv(folder / "sample_submission.csv", index=False)
    config = run_all(project, "seti")
    assert "image_source: npy" in config and "train_path: '{id[0]}/{id}'" in config and "in_chans: 6" in config
    sub = pd.read_csv(project / "submission.csv", dtype={"id": str}).set_index("id").loc[test_ids]
    assert roc_auc(test_y, sub["target"].to_numpy()) >= 0.8


def test_dicom_with_patients_grouped(project):
    """train/<id>.dcm (MONOCHROME1 with rescale and a window, as X-ray downloads have), patient_id repeating in
    train.csv: the folds group patients; scored by ROC AUC."""
    folder, rng = project / "input" / "xray", np.random.default_rng(14)

    def write(split, n, offset):
        ids, targets = [f"ID_{offset + i:05d}" for i in range(n)], np.arange(n) % 2
        (folder / split).mkdir(parents=True)
        for name, target in zip(ids, targets):
            raw = rng.integers(1000, 1400, (24, 24))
            raw[6:18, 6:18] -= 500 if target else 0  # MONOCHROME1: lower stored values show brighter
            write_dicom(folder / split / f"{name}.dcm", raw, photometric="MONOCHROME1", slope=1, intercept=-1024,
                        window=(100, 900))
        return ids, targets

    train_ids, train_y = write("train", 40, 0)
    test_ids, test_y = write("test", 12, 900)
    pd.DataFrame({"image_id": train_ids, "patient_id": [f"P{i // 2}" for i in range(40)], "target": train_y}).to_csv(
        folder / "train.csv", index=False)
    pd.DataFrame({"image_id": test_ids, "target": 0.5}).to_csv(folder / "sample_submission.csv", index=False)
    config = run_all(project, "xray")
    assert "image_source: dicom" in config and "test_image_ext: .dcm" in config and "group_col: patient_id" in config
    assert "# found: competition.group_col: patient_id (20 values for 40 rows)" in config  # said in the YAML
    assert "stratified_group; groups of competition.group_col 'patient_id' kept whole" in config  # and in the log
    folds = pd.read_csv(next((project / "folds" / "xray").rglob("folds.csv")), dtype=str)
    assert folds.groupby(folds["id"].str[3:].astype(int) // 2)["fold"].nunique().max() == 1  # a patient, one fold
    sub = pd.read_csv(project / "submission.csv").set_index("image_id").loc[test_ids]
    assert roc_auc(test_y, sub["target"].to_numpy()) >= 0.8


def test_sixteen_bit_tiffs_keep_the_values_eight_bits_would_merge(project):
    """train/<id>.tif of 16-bit grayscale whose class is a difference of 96 raw units around 30,000: read as 8 bits
    (>> 8) both classes are the same pixels; kept at 16 bits the network separates them. Scored by ROC AUC."""
    from foldstack.data.images import read_image

    folder, rng = project / "input" / "deep", np.random.default_rng(15)

    def write(split, n, offset):
        ids, targets = [f"img{offset + i:04d}" for i in range(n)], np.arange(n) % 2
        (folder / split).mkdir(parents=True)
        for name, target in zip(ids, targets):
            # 30,000 + 96 stays in the 8-bit bucket 117 (29,952..30,207) with its noise: >> 8 merges the classes
            raw = 30_010 + 96 * target + rng.integers(0, 40, (20, 20))
            assert cv2.imwrite(str(folder / split / f"{name}.tif"), raw.astype(np.uint16))
        return ids, targets

    train_ids, train_y = write("train", 40, 0)
    test_ids, test_y = write("test", 12, 500)
    eight = {read_image(folder / "train" / f"{i}.tif").tobytes() for i in train_ids}
    assert len(eight) == 1  # as 8-bit pixels every train image is the same picture
    pd.DataFrame({"id": train_ids, "label": train_y}).to_csv(folder / "train.csv", index=False)
    pd.DataFrame({"id": test_ids, "label": 0.5}).to_csv(folder / "sample_submission.csv", index=False)
    config = run_all(project, "deep")
    assert "in_chans: 1" in config and "16-bit image file inputs of 1 channel(s)" in config
    mean = yaml.safe_load((project / "configs" / "deep.yaml").read_text())["data"]["mean"]
    assert len(mean) == 1 and 30_010 < mean[0] < 30_150  # measured in the raw 16-bit units, not 0..1
    sub = pd.read_csv(project / "submission.csv").set_index("id").loc[test_ids]
    assert roc_auc(test_y, sub["label"].to_numpy()) >= 0.9
    # make predict IMAGES=: the test files as the submission saw them; 8-bit files for these models are refused
    settings = [*TINY, *RUN_ALL]
    run_here(project, "predict_images.py", "deep", *settings,
             extra=["--images", str(folder / "test"), "--out", str(project / "ranked.csv")])
    ranked = pd.read_csv(project / "ranked.csv").assign(id=lambda f: f["image"].str[:-4]).set_index("id").loc[test_ids]
    p1 = np.where(ranked["top1"] == 1, ranked["p1"], 1 - ranked["p1"])  # the probability of class 1
    assert np.allclose(p1, sub["label"].to_numpy(), atol=1e-5)
    cv2.imwrite(str(project / "flat.png"), np.zeros((20, 20), np.uint8))
    proc = run_here(project, "predict_images.py", "deep", *settings, extra=["--images", str(project / "flat.png")],
                    check=False)
    assert proc.returncode != 0 and "flat.png: 8-bit pixels, but the models were trained on 16-bit" in proc.stderr
