"""Tabular columns (competition.tabular_cols): inferred types, one encoder fitted on train, and the level-2
stacker learning a label that only a tabular column carries."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from foldstack.config.competition import Competition
from foldstack.config.levels import Stack, XGBoost
from foldstack.config.schema import Config
from foldstack.data.tabular import TabularEncoder, infer_type, tabular_matrices
from foldstack.data.table import Table, load_test, load_train
from foldstack.discover import discover_competition
from foldstack.errors import PipelineError
from foldstack.predictions import Predictions
from foldstack.stages.stack import level_two

from conftest import write_png

SITES = ["head/neck", "torso", "lower extremity", ""]


def col(*values):
    return pd.Series([str(v) for v in values])


@pytest.mark.parametrize("values, kind", [
    (col(1, 2.5, "", "NaN", 7), "numeric"),
    (col("male", "female", "female"), "binary"),
    (col(0, 1, 1.0, 0), "binary"),                # 1 and 1.0 are one value
    (col("male", "female", ""), "categorical"),   # missing: a level of its own
    (col(*[f"img_{i}" for i in range(40)]), None),  # an id, not a category
    (col("a", "a", "na"), None),                  # constant
])
def test_types_are_inferred(values, kind):
    assert infer_type(values) == kind


def _siim(folder, n_train=40, n_test=12):
    """siim-isic-melanoma-classification's columns: train.csv with sex/age/site (and diagnosis, not in test),
    test.csv with the tabular columns, a sample submission of image_name,target."""
    rng = np.random.default_rng(0)
    rows = []
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            name = f"ISIC_{split}{i:04d}"
            write_png(folder / split / f"{name}.jpg", (90, 60, 40), seed=i)
            rows.append(dict(image_name=name, patient_id=f"IP_{i // 2}", sex=["male", "female", ""][i % 3],
                             age_approx=["", "45.0", "60.0", "30.0"][i % 4], anatom_site_general_challenge=SITES[i % 4],
                             diagnosis="unknown", benign_malignant="benign", target=str(int(rng.random() < 0.3))))
    frame = pd.DataFrame(rows)
    train, test = frame[:n_train], frame[n_train:]
    train.to_csv(folder / "train.csv", index=False)
    test.drop(columns=["diagnosis", "benign_malignant", "target"]).iloc[::-1].to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"image_name": test.image_name, "target": 0}).to_csv(folder / "sample_submission.csv", index=False)
    return folder


def test_discovery_lists_the_columns_the_test_table_has(tmp_path):
    comp = discover_competition(_siim(tmp_path / "input" / "siim"))
    assert comp["group_col"] == "patient_id" and comp["test_csv"] == "test.csv"
    assert comp["tabular_cols"] == {"sex": "categorical", "age_approx": "numeric",
                                    "anatom_site_general_challenge": "categorical"}  # not diagnosis: train only
    assert list(comp).index("tabular_cols") > list(comp).index("group_col")


def test_encoding_is_fitted_on_train_and_keeps_the_sample_submission_order(tmp_path):
    folder = _siim(tmp_path / "input" / "siim")
    comp = Competition(**discover_competition(folder))
    train, test = load_train(comp, tmp_path, "siim"), load_test(comp, tmp_path, "siim")
    x, t, names = tabular_matrices(comp, folder, train, test)
    assert names == ["sex=<missing>", "sex=female", "sex=male", "age_approx", "age_approx:missing",
                     "anatom_site_general_challenge=<missing>", "anatom_site_general_challenge=head/neck",
                     "anatom_site_general_challenge=lower extremity", "anatom_site_general_challenge=torso"]
    age = pd.to_numeric(train.frame.age_approx.replace("", np.nan))
    median, filled = age.median(), age.fillna(age.median())
    assert median == 45.0
    np.testing.assert_allclose(x[:, 3], (filled - median) / filled.std(ddof=0), rtol=1e-6)
    assert x[0, 4] == 1 and x[1, 4] == 0 and x[0, 3] == 0  # row 0's age is missing: the median and its flag
    # test.csv is written in reverse; the rows follow the sample submission: test row i is like train row i
    assert test.ids[0] == "ISIC_test0000"
    np.testing.assert_array_equal(t, x[:len(t)])


def test_encoder_levels_and_refusals():
    train = pd.DataFrame({"n": col(1, 3, ""), "b": col("y", "n", "y"), "c": col("a", "b", "a")})
    enc = TabularEncoder.fit(train, {"n": "numeric", "b": "binary", "c": "categorical"}, "train.csv")
    out = enc.transform(pd.DataFrame({"n": col("", 5), "b": col("n", "?"), "c": col("b", "unseen")}), "test.csv")
    assert enc.feature_names == ["n", "n:missing", "b=y", "c=a", "c=b"]
    scale = np.std([1, 3, 2])
    np.testing.assert_allclose(out, [[0, 1, 0, 0, 1], [3 / scale, 0, 0.5, 0, 0]], rtol=1e-6)
    with pytest.raises(PipelineError, match=r"test.csv row 3: n='x' is not a number"):
        enc.transform(pd.DataFrame({"n": col(1, "x"), "b": col("y", "y"), "c": col("a", "a")}), "test.csv")
    with pytest.raises(PipelineError, match=r"sample_submission.csv: no column 'c' of competition.tabular_cols"):
        enc.transform(pd.DataFrame({"n": col(1), "b": col("y")}), "sample_submission.csv")
    with pytest.raises(PipelineError, match="column c has 3 values"):
        TabularEncoder.fit(pd.DataFrame({"c": col("a", "b", "c")}), {"c": "binary"}, "train.csv")


def test_the_stacker_learns_a_label_only_a_tabular_column_carries(tmp_path):
    """The label is the site; the image model's OOF is noise: the xgboost stacker (fold by fold) beats the blend."""
    rng = np.random.default_rng(1)
    n, m = 400, 50
    site = rng.choice(SITES[:3], n + m)
    y = (site == "torso").astype(np.float32)
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(n + m)], "site": site, "target": y.astype(int).astype(str)})
    train = Table(frame.id[:n].tolist(), [tmp_path / "x.png"] * n, frame[:n], "train.csv")
    test = Table(frame.id[n:].tolist(), [tmp_path / "x.png"] * m, frame[n:].drop(columns="target"),
                 "sample_submission.csv")
    comp = Competition(id_col="id", target_cols=["target"], task="binary", classes=["0", "1"], metric="roc_auc",
                       tabular_cols={"site": "categorical"})
    stack = Stack(method="xgboost", compare=["mean"], xgboost=XGBoost(n_estimators=40, early_stopping_rounds=None))
    ctx = SimpleNamespace(cfg=Config(competition=comp, stack=stack), targets=y[:n, None], train=train, test=test,
                          root=tmp_path, comp="fixture")
    noise = Predictions(rng.random((n, 1)), rng.random((m, 1)), np.arange(n) % 4)
    levels, _, (model, _, test_meta) = level_two(ctx, {"noise": noise}, noise.folds)
    blend_auc = roc_auc_score(y[:n], levels["blend:mean"][1][:, 0])
    stack_auc = roc_auc_score(y[:n], levels["stack:xgboost"][1][:, 0])
    assert blend_auc < 0.6 and stack_auc > 0.95
    assert test_meta.shape == (m, 3) and model.n_features == 4  # the noise column, then site's 3 levels
    assert roc_auc_score(y[n:], levels["stack:xgboost"][2][:, 0]) > 0.95


def test_a_level2_reading_tabular_columns_is_not_bundled(tmp_path):
    from foldstack.artifacts import write_manifest
    from foldstack.stages.bundle import copy_level2

    stack = tmp_path / "stacks" / "c" / "abc"
    stack.mkdir(parents=True)
    write_manifest(stack, "stack", "abc", {}, fold_key="f", level2=dict(files=["level2.json"], method="xgboost",
                                                                        meta_features=[], tabular_cols=["sex"]))
    ctx = SimpleNamespace(root=tmp_path, comp="c")
    with pytest.raises(PipelineError, match="stacks/c/abc: its level 2 reads competition.tabular_cols"):
        copy_level2(ctx, stack, tmp_path / "bundle" / "level2")
    assert not (tmp_path / "bundle").exists()


def test_statoil_inc_angle_from_json_tables(tmp_path):
    """train.json / test.json records (two 8x8 bands, inc_angle 'na' sometimes): inc_angle is numeric, the test
    rows' values are matched to the sample submission by id though test.json lists them in another order."""
    import json

    folder, rng = tmp_path / "input" / "statoil", np.random.default_rng(2)
    folder.mkdir(parents=True)

    def records(prefix, n):
        return [dict(id=f"{prefix}{i}", band_1=rng.normal(-20, 5, 64).round(2).tolist(),
                     band_2=rng.normal(-25, 4, 64).round(2).tolist(), inc_angle="na" if i % 3 == 0 else 30.0 + i,
                     is_iceberg=i % 2) for i in range(n)]

    train, test = records("a", 9), records("t", 4)
    (folder / "train.json").write_text(json.dumps(train))
    (folder / "test.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "is_iceberg"}
                                                  for r in test[::-1]]))
    pd.DataFrame({"id": [r["id"] for r in test], "is_iceberg": 0.5}).to_csv(folder / "sample_submission.csv",
                                                                           index=False)
    found = discover_competition(folder)
    assert found["image_source"] == "table" and found["tabular_cols"] == {"inc_angle": "numeric"}
    comp = Competition(**found)
    x, t, names = tabular_matrices(comp, folder, load_train(comp, tmp_path, "statoil"),
                                   load_test(comp, tmp_path, "statoil"))
    assert names == ["inc_angle", "inc_angle:missing"]
    np.testing.assert_array_equal(t[:, 1], [1, 0, 0, 1])  # t0 and t3 are 'na', in the sample submission's order
    np.testing.assert_allclose(t[1:3, 0], x[1:3, 0])  # t1, t2 have a1's and a2's angles
