"""Replicas of the downloads whose pixels are not one image file per id (see layout_fixtures.py): SIIM-ISIC's
DICOM train/ beside jpeg/train/, SETI's float16 (6, H, W) .npy in folders named by the id's first character,
statoil's JSON band lists in 7z archives, digit-recognizer's pixels in CSV columns, Human Protein Atlas's four
grayscale PNGs per id."""
import json

import numpy as np
import pandas as pd

from layout_fixtures import csv, hexid, image, pack


def write_dicom(path, pixels, photometric="MONOCHROME2", slope=1, intercept=0, window=None, pixel_data=True,
                bits_stored=16) -> None:
    """A minimal DICOM file (pydicom) of unsigned 16-bit pixels (H x W) with the given tags."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits_stored, bits_stored - 1, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    if pixel_data:
        ds.PixelData = pixels.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def siim(d):
    names = [f"ISIC_{1000000 + 37 * i}" for i in range(26)]
    for n, name in enumerate(names):
        side = "train" if n < 20 else "test"
        image(d / "jpeg" / side / f"{name}.jpg", n, 32)
        write_dicom(d / side / f"{name}.dcm", np.random.default_rng(n).integers(0, 4096, (32, 32)))
    (d / "tfrecords").mkdir()
    (d / "tfrecords" / "train00-18.tfrec").write_bytes(b"\0" * 16)
    tabular = {"patient_id": [f"IP_{7000 + i // 2}" for i in range(26)], "sex": "male", "age_approx": 45.0,
               "anatom_site_general_challenge": "torso"}
    target = [i % 2 for i in range(20)]
    csv(d / "train.csv", {"image_name": names[:20], **{k: v[:20] if isinstance(v, list) else v
                                                       for k, v in tabular.items()},
                          "diagnosis": ["melanoma" if t else "unknown" for t in target],
                          "benign_malignant": ["malignant" if t else "benign" for t in target], "target": target})
    csv(d / "test.csv", {"image_name": names[20:], **{k: v[20:] if isinstance(v, list) else v
                                                      for k, v in tabular.items()}})
    csv(d / "sample_submission.csv", {"image_name": names[20:], "target": 0})


def seti(d):
    ids = [hexid(i, 15) for i in range(26)]
    for n, i in enumerate(ids):
        side = "train" if n < 20 else "test"
        (d / side / i[0]).mkdir(parents=True, exist_ok=True)
        np.save(d / side / i[0] / f"{i}.npy", np.random.default_rng(n).normal(0, 1, (6, 32, 32)).astype(np.float16))
    csv(d / "train_labels.csv", {"id": ids[:20], "target": [i % 2 for i in range(20)]})
    csv(d / "sample_submission.csv", {"id": ids[20:], "target": 0.5})
    csv(d / "old_leaky_data" / "train_labels_old.csv", {"id": ids[:3], "target": 0})


def statoil(d):
    rng = np.random.default_rng(4)
    records = [dict(id=hexid(i, 8), band_1=rng.normal(-20, 5, 75 * 75).round(4).tolist(),
                    band_2=rng.normal(-25, 4, 75 * 75).round(4).tolist(), inc_angle="na" if i == 3 else 39.2 + i / 10,
                    is_iceberg=i % 2) for i in range(26)]
    (d / "train.json").write_text(json.dumps(records[:20]))
    (d / "test.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "is_iceberg"} for r in records[20:]]))
    csv(d / "sample_submission.csv", {"id": [r["id"] for r in records[20:]], "is_iceberg": 0.5})
    for name in ("train.json", "test.json", "sample_submission.csv"):
        pack(d, name, f"{name}.7z")


def digit_recognizer(d):
    rng, cols = np.random.default_rng(5), [f"pixel{i}" for i in range(784)]
    train = pd.DataFrame(rng.integers(0, 256, (20, 784)), columns=cols)
    train.insert(0, "label", [i % 10 for i in range(20)])
    csv(d / "train.csv", train)
    csv(d / "test.csv", pd.DataFrame(rng.integers(0, 256, (6, 784)), columns=cols))
    csv(d / "sample_submission.csv", {"ImageId": range(1, 7), "Label": 0})


def human_protein_atlas(d):
    targets = ["16 0", "0 2", "25 0", "2 1", "5 16", "25 2", "1 5", "16 25", "5 1", "0"]  # 6+ rows a tag
    ids = [f"{hexid(i, 8)}-bbc3-11e8-b2bc-ac1f6b6435d0" for i in range(26)]
    for n, i in enumerate(ids):
        for channel in ("red", "green", "blue", "yellow"):
            image(d / ("train" if n < 20 else "test") / f"{i}_{channel}.png", n * 4 + len(channel), 32, gray=True)
    csv(d / "train.csv", {"Id": ids[:20], "Target": [targets[i % 10] for i in range(20)]})
    csv(d / "sample_submission.csv", {"Id": ids[20:], "Predicted": "0"})
