"""Layout families of real downloads through the stage scripts as `make all` runs them (in this process: run_here),
from the replicas of scripts/layout_fixtures.py (the real names, columns, folders, archives; MLE-bench's
description.md): no edit to the inferred config, and each submission accepted by a scorer written here from the
competition's evaluation text, as its grader would check it (the columns, every test id once, values of the right
kind). The replicas' pixels are noise: what is checked is the way through, not the score.

Families: a class folder in each train path beside a csv (paddy-disease-classification), COCO-style JSON metadata
with nested paths (herbarium-2022-fgvc9), one images/ folder for train and test with one-hot columns
(plant-pathology-2020-fgvc7), space-separated tags beside a labels.csv that is not the train table (imet-2020-fgvc7),
7z and zip archives with integer ids (invasive-species-monitoring)."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, make_all_here

sys.path.insert(0, str(REPO / "scripts"))
import layout_fixtures  # noqa: E402  (scripts/: the survey's replicas)
from survey_layouts import write_description  # noqa: E402

pytestmark = pytest.mark.slow  # trains through the stage scripts in this process (run_here)

def run_all(project: Path, slug: str, build) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """(the inferred config, the submission, the sample submission) of the replica `build` writes."""
    folder = project / "input" / slug
    folder.mkdir(parents=True)
    build(folder)
    write_description(folder, slug)
    make_all_here(project, slug, "data.img_size=16", "predict.tta=[]")
    sample = pd.read_csv(folder / "sample_submission.csv", dtype=str, keep_default_na=False)
    submission = pd.read_csv(project / "submission.csv", dtype=str, keep_default_na=False)
    assert list(submission.columns) == list(sample.columns)
    assert sorted(submission.iloc[:, 0]) == sorted(sample.iloc[:, 0])  # every test id once
    return (project / "configs" / f"{slug}.yaml").read_text(), submission, sample


def macro_f1(true, pred) -> float:
    """Mean over the classes present in the truth or the predictions of 2 TP / (2 TP + FP + FN)."""
    classes = set(true) | set(pred)
    return float(np.mean([2 * sum((t == c) & (p == c) for t, p in zip(true, pred))
                          / (sum(t == c for t in true) + sum(p == c for p in pred)) for c in classes]))


def test_paddy_label_folders_beside_the_csv(project):
    config, sub, _ = run_all(project, "paddy-disease-classification", layout_fixtures.paddy)
    assert "train_path: '{label}/{image_id}'" in config and "metric: accuracy" in config
    classes = {"bacterial_leaf_blight", "blast", "normal", "tungro"}
    assert set(sub["label"]) <= classes  # accuracy: one of the train labels per image


def test_herbarium_coco_metadata_and_nested_paths(project):
    config, sub, _ = run_all(project, "herbarium-2022-fgvc9", layout_fixtures.herbarium)
    assert "train_metadata: train_metadata.json" in config and "metric: macro_f1" in config
    predicted = sub["Predicted"].astype(int).to_numpy()
    assert set(predicted) <= {0, 1, 2, 3}  # category ids, as the grader's f1_score(average="macro") compares
    assert 0 <= macro_f1(np.arange(len(predicted)) % 4, predicted) <= 1


def test_plant_pathology_one_images_folder_and_column_wise_auc(project):
    config, sub, _ = run_all(project, "plant-pathology-2020-fgvc7", layout_fixtures.plant_pathology_2020)
    assert "train_dir: images" in config and "test_dir: images" in config and "metric: roc_auc" in config
    probs = sub[["healthy", "multiple_diseases", "rust", "scab"]].astype(float).to_numpy()
    assert ((probs >= 0) & (probs <= 1)).all()  # mean column-wise ROC AUC: a probability per class column
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-4)  # one disease per leaf: softmax, not independent tags


def test_imet_tags_beside_a_labels_table(project):
    config, sub, _ = run_all(project, "imet-2020-fgvc7", layout_fixtures.imet)
    assert "train_csv: train.csv" in config and "task: multilabel" in config and "metric: micro_f1" in config
    tags = {t for row in sub["attribute_ids"] for t in row.split()}
    assert tags <= {"2", "13", "51", "121", "1092"}  # attribute ids, space-separated


def test_invasive_species_7z_archives_and_integer_ids(project):
    config, sub, _ = run_all(project, "invasive-species-monitoring", layout_fixtures.invasive)
    assert "train_image_ext: .jpg" in config and "metric: roc_auc" in config
    assert sorted(sub["name"].astype(int)) == list(range(21, 27))
    p = sub["invasive"].astype(float)
    assert p.between(0, 1).all()  # ROC AUC on the probability of the invasive class
