import numpy as np
import pandas as pd
import pytest

from foldstack.config.competition import Competition
from foldstack.errors import PipelineError
from foldstack.submission import build_submission, score_submission, validate_submission

LABEL = Competition(task="multiclass", classes=["cat", "dog", "sea turtle"], submission_format="label",
                    submission_columns=["id", "label"], target_cols=["label"], metric="accuracy")
BINARY = Competition(task="binary", classes=["0", "1"], submission_format="probability", metric="roc_auc",
                     submission_columns=["id", "has_cactus"], target_cols=["has_cactus"])
TAGS = Competition(task="multilabel", classes=["haze", "primary", "road"], submission_format="tags",
                   submission_columns=["image_name", "tags"], target_cols=["tags"], metric="micro_f1")
COLUMNS = Competition(task="multiclass", classes=["a", "b"], submission_format="class_columns", metric="log_loss",
                      submission_columns=["id", "b", "a"], target_cols=["label"])
IDS = ["x1", "x2", "x3"]


def sample(comp):
    return pd.DataFrame({comp.submission_columns[0]: IDS, **{c: "0" for c in comp.submission_columns[1:]}})


@pytest.mark.parametrize("comp, probs, expected", [
    (LABEL, [[.1, .8, .1], [.2, .1, .7], [.9, 0, .1]], ["dog", "sea turtle", "cat"]),
    (BINARY, [[.2], [.9], [.5]], [.2, .9, .5]),
    (TAGS, [[.9, .6, .1], [.1, .2, .3], [0, .1, .95]], ["haze primary", "road", "road"]),
])
def test_build_is_valid_and_in_competition_format(comp, probs, expected):
    sub = build_submission(comp, IDS, np.array(probs))
    validate_submission(sub, sample(comp), comp)
    assert sub[comp.submission_columns[1]].tolist() == expected


def test_class_columns_follow_the_sample_order():
    sub = build_submission(COLUMNS, IDS, np.array([[.3, .7], [.6, .4], [.5, .5]]))
    validate_submission(sub, sample(COLUMNS), COLUMNS)
    assert list(sub.columns) == ["id", "b", "a"] and sub["b"].tolist() == [.7, .4, .5]


def good():
    return build_submission(LABEL, IDS, np.eye(3))


@pytest.mark.parametrize("corrupt, message", [
    (lambda s: s.assign(id=["x1", "x2", "zz"]), "row 4: unknown id"),
    (lambda s: s.iloc[[1, 0, 2]].reset_index(drop=True), "row 2: ids in a different order"),
    (lambda s: s.iloc[:2], "2 rows, sample submission has 3"),
    (lambda s: s.rename(columns={"label": "class"}), "columns"),
    (lambda s: s[["label", "id"]], "columns"),
    (lambda s: s.assign(label=["cat", None, "dog"]), "row 3: label is empty/NaN"),
    (lambda s: s.assign(label=["cat", "horse", "dog"]), "row 3: label='horse' is not a known class"),
])
def test_validation_rejects_bad_submissions(corrupt, message):
    with pytest.raises(PipelineError, match=message):
        validate_submission(corrupt(good()), sample(LABEL), LABEL)


@pytest.mark.parametrize("value", [np.nan, 1.5, -0.1, "abc"])
def test_validation_rejects_bad_probabilities(value):
    sub = build_submission(BINARY, IDS, np.array([[.2], [.9], [.5]])).astype(object)
    sub.loc[1, "has_cactus"] = value
    with pytest.raises(PipelineError, match="row 3: has_cactus"):
        validate_submission(sub, sample(BINARY), BINARY)


def test_score_against_labels_in_any_order():
    labels = pd.DataFrame({"id": ["x3", "x1", "x2"], "label": ["cat", "dog", "cat"]})
    sub = build_submission(LABEL, IDS, np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]]))
    assert score_submission(sub, labels, LABEL, "labels.csv") == pytest.approx(2 / 3)
    auc_labels = pd.DataFrame({"id": IDS, "has_cactus": ["0", "1", "1"]})
    auc_sub = build_submission(BINARY, IDS, np.array([[.1], [.8], [.7]]))
    assert score_submission(auc_sub, auc_labels, BINARY, "labels.csv") == 1.0
    with pytest.raises(PipelineError, match="no label for id 'x3'"):
        score_submission(sub, labels.iloc[1:], LABEL, "labels.csv")
