"""The embedded sample: scikit-learn's bundled handwritten digits (1,797 real 8x8 scans) as a Kaggle folder."""
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from .utils.io import atomic_write_bytes, atomic_write_csv


def make_digits(out: Path, size: int = 32, test_fraction: float = 0.2, seed: int = 0) -> Path:
    """input/digits/: train.csv (id,label), train/*.png, test/*.png, sample_submission.csv, test_labels.csv.

    Ids carry no file extension, as in many Kaggle competitions; the pipeline infers '.png'."""
    out = Path(out)
    digits = load_digits()
    ids = np.array([f"digit_{i:04d}" for i in range(len(digits.target))])
    train_idx, test_idx = train_test_split(np.arange(len(ids)), test_size=test_fraction, random_state=seed,
                                           stratify=digits.target)
    for split, idx in (("train", train_idx), ("test", test_idx)):
        for i in idx:
            img = (digits.images[i] * (255 / 16)).astype(np.uint8)
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)
            atomic_write_bytes(out / split / f"{ids[i]}.png", cv2.imencode(".png", img)[1].tobytes())
    atomic_write_csv(out / "test_labels.csv", pd.DataFrame({"id": ids[test_idx], "label": digits.target[test_idx]}))
    atomic_write_csv(out / "sample_submission.csv", pd.DataFrame({"id": ids[test_idx], "label": 0}))
    # train.csv last: its presence marks a complete sample
    atomic_write_csv(out / "train.csv", pd.DataFrame({"id": ids[train_idx], "label": digits.target[train_idx]}))
    return out
