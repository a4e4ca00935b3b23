"""Top-k retrieval with an unknown class, and tabular columns that carry the label, through the stage scripts as
`make all` runs them (in this process: run_here) with no edit to the inferred config beyond the option each
exercises; each submission scored by a scorer written here from the competition's evaluation text."""
import numpy as np
import pandas as pd
import pytest

from conftest import make_all_here
from test_tabular import _siim
from test_sources_e2e import roc_auc
from test_topk import grader_map, write_whale

pytestmark = pytest.mark.slow  # trains through the stage scripts in this process (run_here)

def run_all(project, comp: str, *overrides) -> str:
    make_all_here(project, comp, "data.img_size=16", "predict.tta=[]", *overrides)
    return (project / "configs" / f"{comp}.yaml").read_text()


def test_whale_top_5_with_new_whale_from_discovery_to_a_map_at_5_submission(project):
    """whale-categorization-playground: Image,Id with singletons and new_whale; the sample's 5 ids a row; MAP@5."""
    folder = project / "input" / "whale-categorization-playground"
    labels = write_whale(folder)
    config = run_all(project, "whale-categorization-playground", "competition.unknown_class=new_whale")
    assert "metric: map_at_k" in config and "submission_format: top_k" in config and "top_k: 5" in config
    sub = pd.read_csv(project / "submission.csv")
    sample = pd.read_csv(folder / "sample_submission.csv")
    assert sub["Image"].tolist() == sample["Image"].tolist()
    rows = [row.split() for row in sub["Id"]]
    assert all(len(r) == 5 and len(set(r)) == 5 and set(r) <= set(labels) for r in rows)  # 5 known ids, no repeat
    truth = ["new_whale", "w_1287fbc", "w_98baff9", "new_whale"]
    assert 0 <= grader_map(truth, sub["Id"].tolist()) <= 1


def test_a_label_only_a_tabular_column_carries_is_learned_by_the_stacker(project):
    """siim-isic-melanoma-classification's columns; the target is `sex == male`, the images say nothing: the
    xgboost stacker on the tabular columns scores the test rows (ROC AUC written from the text) far above chance."""
    folder = _siim(project / "input" / "siim", n_train=60, n_test=20)
    train = pd.read_csv(folder / "train.csv", dtype=str, keep_default_na=False)
    train["target"] = (train["sex"] == "male").astype(int).astype(str)
    train.to_csv(folder / "train.csv", index=False)
    config = run_all(project, "siim", "stack.method=xgboost", "train.epochs=1")
    assert "tabular_cols:" in config and "sex: categorical" in config
    test = pd.read_csv(folder / "test.csv", dtype=str, keep_default_na=False).set_index("image_name")
    sub = pd.read_csv(project / "submission.csv").set_index("image_name")
    y = (test.loc[sub.index, "sex"] == "male").astype(int).to_numpy()
    assert roc_auc(y, sub["target"].to_numpy()) >= 0.9
