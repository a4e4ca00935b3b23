"""Ordinal grades (aptos2019-blindness-detection: diagnosis 0-4, quadratic weighted kappa) trained as a regression:
qwk of the cut values on a hand-computed case, the cuts searched on OOF (and their fold-honest CV), the stored
cuts applied at submit, the config's refusals, and one run of the stage scripts scored by a qwk written here from
the evaluation text."""
import numpy as np
import pandas as pd
import pytest

from conftest import make_all_here, write_png
from foldstack.config.competition import Competition
from foldstack.config.levels import Stack
from foldstack.errors import PipelineError
from foldstack.metrics import comp_score, fold_scores
from foldstack.ordinal import check_ordinal, cut_names, to_grades
from foldstack.regression import scale
from foldstack.stacking.ordinal import fold_honest_cv, search_cuts
from foldstack.stacking.report import level_report
from foldstack.stacking.thresholds import level_thresholds, threshold_names, thresholds_for, write_thresholds
from foldstack.submission import build_submission, score_submission, validate_submission

APTOS_SLUG = "aptos2019-blindness-detection"  # discovery reads metric qwk from the slug (no description.md)
APTOS = Competition(task="regression", metric="qwk", submission_format="label", id_col="id_code",
                    target_cols=["diagnosis"], classes=[], target_range=[(0.0, 4.0)],
                    submission_columns=["id_code", "diagnosis"])


def grades_scaled(values, comp=APTOS) -> np.ndarray:
    return scale(np.asarray(values, np.float64).reshape(-1, 1), comp.target_range)


def qwk_by_text(true, pred, n_grades: int) -> float:
    """aptos's evaluation text: O the histogram of (true, predicted) grades, w_ij = (i - j)^2 / (N - 1)^2, E the
    outer product of the two grade histograms scaled to O's sum; kappa = 1 - sum(w O) / sum(w E)."""
    observed = np.zeros((n_grades, n_grades))
    np.add.at(observed, (np.asarray(true), np.asarray(pred)), 1)
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
    i, j = np.indices(observed.shape)
    w = (i - j) ** 2 / (n_grades - 1) ** 2
    return 1 - (w * observed).sum() / (w * expected).sum()


def test_qwk_of_cut_values_on_a_hand_computed_case():
    comp = APTOS.model_copy(update={"target_range": [(0.0, 2.0)]})
    y, p = grades_scaled([0, 0, 1, 2], comp), grades_scaled([0.2, 0.6, 1.4, 1.45], comp)
    # rounded: predicted grades 0, 1, 1, 1. O = [[1,1,0],[0,1,0],[0,1,0]], truth histogram [2,1,1], predicted
    # [1,3,0]: E = [[.5,1.5,0],[.25,.75,0],[.25,.75,0]]; w = (i-j)^2/4: sum(wO) = .25 + .25 = .5,
    # sum(wE) = 1.5*.25 + .25*.25 + .25*1 + .75*.25 = .875; kappa = 1 - .5/.875 = 3/7
    assert to_grades(comp, p).tolist() == [0, 1, 1, 1]
    assert comp_score(comp, y, p) == pytest.approx(3 / 7)
    # cut at 0.1 and 1.5: every row grade 1, O equals E: kappa 0 (one grade for every image, the 0.0)
    assert to_grades(comp, p, [0.1, 1.5]).tolist() == [1, 1, 1, 1]
    assert comp_score(comp, y, p, np.array([0.1, 1.5])) == pytest.approx(0.0)
    # a value at a cut is the grade above it; the text's own formula agrees on a random case
    assert to_grades(comp, grades_scaled([0.5, 1.5], comp)).tolist() == [1, 2]
    rng = np.random.default_rng(1)
    true, values = rng.integers(0, 5, 200), rng.uniform(0, 4, 200)
    assert comp_score(APTOS, grades_scaled(true), grades_scaled(values)) == pytest.approx(
        qwk_by_text(true, np.rint(values).astype(int), 5))


def shifted_oof(n: int = 1000, shift: float = 0.4, seed: int = 0):
    """Balanced grades 0-4 whose OOF values sit `shift` above the grade with noise: the best cuts are the
    midpoints + shift, rounding puts a large share of every grade one too high."""
    rng = np.random.default_rng(seed)
    true = np.arange(n) % 5
    values = np.clip(true + shift + rng.normal(0, 0.2, n), 0, 4)
    return grades_scaled(true), grades_scaled(values), (np.arange(n) // 5) % 5  # every grade in every fold


def test_search_recovers_shifted_cuts_and_its_honest_cv():
    y, oof, folds = shifted_oof()
    cuts = search_cuts(APTOS, y, oof)
    assert np.abs(cuts - np.array([0.9, 1.9, 2.9, 3.9])).max() < 0.1, cuts
    rounded, searched = comp_score(APTOS, y, oof), comp_score(APTOS, y, oof, cuts)
    assert rounded < 0.95 and searched > rounded + 0.04, (rounded, searched)  # 0.946 -> 0.998
    # refitted without each fold's rows, the cuts still beat rounding on the rows they never saw
    honest = fold_honest_cv(APTOS, y, oof, folds)
    assert rounded + 0.04 < honest <= searched + 1e-9, (rounded, honest, searched)
    # ties keep the midpoints: OOF values exactly on the grades leave nothing to improve
    assert search_cuts(APTOS, y, y).tolist() == [0.5, 1.5, 2.5, 3.5]


def test_stack_stores_cuts_and_the_table_shows_rounding_against_them(tmp_path):
    y, oof, folds = shifted_oof(n=500, seed=2)
    cuts = thresholds_for(APTOS, Stack(), y, oof)
    assert thresholds_for(APTOS, Stack(search_thresholds=False), y, oof) is None
    names = threshold_names(APTOS, ["diagnosis"])
    assert names == cut_names(APTOS) == ["0|1", "1|2", "2|3", "3|4"]
    write_thresholds(tmp_path, names, cuts)
    assert level_thresholds(APTOS, Stack(), y, tmp_path, ["diagnosis"], oof).tolist() == cuts.tolist()
    report = level_report({"blend:mean": ("blend", oof, oof)}, y, folds, APTOS, "blend:mean", cuts)
    row = report.iloc[0]
    assert row["cv"] == pytest.approx(comp_score(APTOS, y, oof))  # rounding
    assert row["mean"] == pytest.approx(np.mean(fold_scores(APTOS, y, oof, folds)))
    assert row["cv_tuned_thresholds"] == pytest.approx(fold_honest_cv(APTOS, y, oof, folds))
    assert row["cv_tuned_thresholds"] > row["cv"] + 0.04


def test_submission_holds_integer_grades_in_the_sample_order():
    sample = pd.DataFrame({"id_code": ["c", "a", "b", "d"], "diagnosis": [0, 0, 0, 0]})
    test = grades_scaled([0.95, 3.2, 1.85, 4.3])  # a prediction may fall outside the range: the top grade
    sub = build_submission(APTOS, sample.id_code.tolist(), test, np.array([0.9, 1.9, 2.9, 3.9]))
    assert sub.id_code.tolist() == ["c", "a", "b", "d"] and sub.diagnosis.tolist() == [1, 3, 1, 4]
    assert sub.diagnosis.dtype.kind == "i"
    assert build_submission(APTOS, sample.id_code.tolist(), test).diagnosis.tolist() == [1, 3, 2, 4]  # rounded
    validate_submission(sub, sample, APTOS)
    with pytest.raises(PipelineError, match=r"row 3: diagnosis='5' is not a known class"):
        validate_submission(sub.assign(diagnosis=[1, 5, 1, 4]), sample, APTOS)
    labels = pd.DataFrame({"id_code": ["a", "b", "c", "d"], "diagnosis": [2, 1, 1, 4]})  # by id, not by row
    assert score_submission(sub, labels, APTOS, "labels.csv") == pytest.approx(
        qwk_by_text([1, 2, 1, 4], [1, 3, 1, 4], 5))


@pytest.mark.parametrize("update, message", [
    ({"submission_format": "value"}, "submission_format=value: ordinal grades"),
    ({"target_range": [(0.0, 4.5)]}, r"target_range=\[\[0.0, 4.5\]\]: ordinal grades"),
    ({"target_cols": ["a", "b"], "target_range": [(0.0, 4.0)] * 2}, "needs one target column"),
    ({"metric": "rmse"}, "submission_format=label with task regression submits grades"),
])
def test_configs_that_cannot_submit_grades_are_refused(update, message):
    check_ordinal(APTOS)
    with pytest.raises(PipelineError, match=message):
        check_ordinal(APTOS.model_copy(update=update))


def write_aptos(folder, n_train: int, n_test: int, seed: int = 0) -> pd.DataFrame:
    """aptos's names and shapes: train.csv id_code,diagnosis (0-4: the image's brightness), train_images/<id>.png,
    test_images/<id>.png, sample_submission id_code,diagnosis (all 0). Returns the test rows' true grades."""
    rng = np.random.default_rng(seed)
    ids = [f"{i:012x}" for i in rng.integers(0, 2 ** 47, n_train + n_test)]
    grade = np.arange(n_train + n_test) % 5
    for i, (name, g) in enumerate(zip(ids, grade)):
        part = "train_images" if i < n_train else "test_images"
        write_png(folder / part / f"{name}.png", (40 + 50 * g,) * 3, seed=i)
    pd.DataFrame({"id_code": ids[:n_train], "diagnosis": grade[:n_train]}).to_csv(folder / "train.csv", index=False)
    pd.DataFrame({"id_code": ids[n_train:], "diagnosis": 0}).to_csv(folder / "sample_submission.csv", index=False)
    return pd.DataFrame({"id_code": ids[n_train:], "diagnosis": grade[n_train:]})


@pytest.mark.slow  # trains through the stage scripts in this process (run_here)
def test_aptos_like_end_to_end_as_ordinal_regression(project):
    truth = write_aptos(project / "input" / APTOS_SLUG, 30, 10, seed=4)
    runs = make_all_here(project, APTOS_SLUG, "competition.task=regression", "competition.target_range=[[0,4]]",
                         "train.epochs=5", "data.img_size=16", "predict.tta=[]", "train.lr=0.003")
    assert "cv_tuned_thresholds" in runs["05_stack.py"].stdout
    stack = next((project / "stacks" / APTOS_SLUG).glob("*/thresholds.json"))
    assert '"0|1"' in stack.read_text()
    sub = pd.read_csv(project / "submission.csv")
    assert sub.id_code.tolist() == truth.id_code.tolist() and set(sub.diagnosis) <= set(range(5))
    assert qwk_by_text(truth.diagnosis, sub.diagnosis, 5) > 0.5
