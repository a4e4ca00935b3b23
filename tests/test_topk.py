"""Top-k retrieval (whale-categorization-playground): MAP@k as the evaluation text defines it, the k best classes
submitted best first, the unknown class (new_whale) at a threshold searched on OOF, and the discovery of a
whale-like folder."""
import numpy as np
import pandas as pd
import pytest

from conftest import COLORS, write_png
from foldstack.config.competition import Competition
from foldstack.data.splits import assign_folds, metric_requirements
from foldstack.description import described_metric
from foldstack.discover import discover_competition
from foldstack.errors import PipelineError
from foldstack.metrics import comp_score, is_better, score
from foldstack.stacking.thresholds import thresholds_for
from foldstack.submission import build_submission, score_submission, validate_submission
from foldstack.topk import top_k_classes

CLASSES = ["new_whale", "w_a", "w_b", "w_c", "w_d", "w_e", "w_f"]
SAMPLE_CELL = "new_whale w_1287fbc w_98baff9 w_7554f44 w_1eafe46"


def grader_map(truth: list[str], predicted: list[str], k: int = 5) -> float:
    """MAP@k written from the evaluation text: per image, the precision at the cutoff where the (one) true id is
    first predicted, 0 when it is not among the first k; the mean over images."""
    total = 0.0
    for true, row in zip(truth, predicted):
        labels = row.split()[:k]
        total += 1 / (labels.index(true) + 1) if true in labels else 0.0
    return total / len(truth)


def whale_comp(**kw) -> Competition:
    return Competition(id_col="Image", target_cols=["Id"], classes=CLASSES, metric="map_at_k",
                       submission_format="top_k", top_k=kw.pop("top_k", 5), submission_columns=["Image", "Id"], **kw)


def onehot(labels: list[str]) -> np.ndarray:
    return np.eye(len(CLASSES), dtype=np.float32)[[CLASSES.index(c) for c in labels]]


def test_map_at_5_by_hand():
    # rank 1, rank 3, absent, rank 5, rank 2: (1 + 1/3 + 0 + 1/5 + 1/2) / 5
    p = np.array([[.05, .60, .10, .10, .05, .05, .05],    # w_a first
                  [.05, .40, .30, .15, .04, .03, .03],    # w_c third
                  [.50, .20, .10, .08, .06, .04, .02],    # w_f sixth: out of the top 5
                  [.30, .25, .20, .15, .06, .04, 0.0],    # w_d fifth
                  [.10, .10, .50, .10, .10, .05, .05]], np.float32)  # ties after w_b: new_whale (index 0) second
    y = onehot(["w_a", "w_c", "w_f", "w_d", "new_whale"])
    expected = (1 + 1 / 3 + 0 + 1 / 5 + 1 / 2) / 5
    assert score("map_at_k", y, p, "multiclass", top_k=5) == pytest.approx(expected)
    assert comp_score(whale_comp(), y, p) == pytest.approx(expected)
    assert score("map_at_k", y, p, "multiclass", top_k=1) == pytest.approx(1 / 5)  # MAP@1: accuracy
    assert is_better("map_at_k", 0.6, 0.5) and not is_better("map_at_k", 0.4, 0.5)


def test_top_k_ranks_best_first_without_a_float64_copy_across_blocks(monkeypatch):
    import foldstack.topk as topk

    monkeypatch.setattr(topk, "BLOCK_ROWS", 3)  # 7 rows: three blocks, the last of one row
    p = np.random.default_rng(0).random((7, 40)).astype(np.float32)
    ranked = top_k_classes(p, 5)
    assert ranked.shape == (7, 5) and ranked.dtype == np.int64
    assert ranked.tolist() == np.argsort(-p, axis=1, kind="stable")[:, :5].tolist()
    assert top_k_classes(p[:, :3], 5).shape == (7, 3)  # fewer classes than k: all of them


def test_submission_names_the_k_best_classes_best_first_in_the_sample_order():
    comp = whale_comp(top_k=3)
    ids = ["c.jpg", "a.jpg", "b.jpg"]  # the sample's order, not sorted
    p = np.array([[.1, .5, .2, .1, .05, .03, .02],
                  [.6, .1, .1, .1, .05, .03, .02],
                  [.0, .0, .0, .1, .2, .3, .4]], np.float32)
    sub = build_submission(comp, ids, p)
    assert sub.columns.tolist() == ["Image", "Id"] and sub["Image"].tolist() == ids
    assert sub["Id"].tolist() == ["w_a w_b new_whale", "new_whale w_a w_b", "w_f w_e w_d"]
    sample = pd.DataFrame({"Image": ids, "Id": "new_whale w_a w_b"})
    validate_submission(sub, sample, comp)
    labels = pd.DataFrame({"Image": ["a.jpg", "b.jpg", "c.jpg"], "Id": ["w_a", "w_c", "w_b"]})
    # scored from the written ranking: a.jpg rank 2, b.jpg absent, c.jpg rank 2
    assert score_submission(sub, labels, comp, "labels") == pytest.approx(grader_map(
        ["w_b", "w_a", "w_c"], sub["Id"].tolist(), 3)) == pytest.approx(1 / 3)
    for cell, why in (("w_a w_b w_c w_d", "or names more than 3"), ("w_a w_zzz", "is not a known class")):
        bad = sub.assign(Id=[cell, "w_a", "w_a"])
        with pytest.raises(PipelineError, match=rf"^submission row 2: Id='{cell}' is not a known class"):
            validate_submission(bad, sample, comp)
        assert why in str(pytest.raises(PipelineError, validate_submission, bad, sample, comp).value)


def test_new_whale_is_inserted_at_the_threshold_searched_on_oof():
    from foldstack.config.levels import Stack

    comp = whale_comp(top_k=3, unknown_class="new_whale")
    # known whales are predicted confidently; unknown ones are flat, and new_whale's own column is weak
    rng = np.random.default_rng(1)
    truth = ["w_a", "w_b", "w_c", "new_whale", "new_whale", "w_d", "new_whale", "w_e"] * 5
    p = np.full((len(truth), len(CLASSES)), 0.02, np.float32)
    for i, label in enumerate(truth):
        if label == "new_whale":
            p[i, 1:] = rng.uniform(0.05, 0.15, len(CLASSES) - 1)  # no known whale stands out
        else:
            p[i, CLASSES.index(label)] = 0.8
    y = onehot(truth)
    plain = comp_score(comp, y, p)  # new_whale ranked by its own (low) column: never in the top 3
    assert plain == pytest.approx(5 * 5 / len(truth))
    thresholds = thresholds_for(comp, Stack(), y, p)
    t = thresholds[0]
    assert 0.15 <= t < 0.8 and thresholds[1:].tolist() == [comp.tag_threshold] * 6  # only new_whale's entry
    assert comp_score(comp, y, p, thresholds) == pytest.approx(1.0)  # every row right at rank 1
    sub = build_submission(comp, [f"{i}.jpg" for i in range(len(truth))], p, thresholds)
    assert sub["Id"].tolist()[:4] == ["w_a new_whale w_b", "w_b new_whale w_a", "w_c new_whale w_a",
                                      sub["Id"][3]] and sub["Id"][3].startswith("new_whale ")
    assert thresholds_for(comp, Stack(search_thresholds=False), y, p) is None
    assert thresholds_for(whale_comp(top_k=3), Stack(), y, p) is None  # no unknown_class: a class like the others
    with pytest.raises(PipelineError, match=r"^competition.unknown_class 'unknown' is not one of competition"):
        thresholds_for(whale_comp(unknown_class="unknown"), Stack(), y, p)


def test_top_k_keys_leave_other_competitions_artifact_keys_alone():
    plain = Competition(classes=["a", "b"]).model_dump()
    assert "top_k" not in plain and "unknown_class" not in plain
    assert whale_comp(unknown_class="new_whale").model_dump()["top_k"] == 5


def write_whale(folder, description: str | None = None, sample_cell: str = SAMPLE_CELL):
    """train.csv Image,Id: two whales of 6 images, 8 seen once, 6 new_whale; 4 test images."""
    labels = ["w_1287fbc"] * 6 + ["w_98baff9"] * 6 + [f"w_{i:07x}" for i in range(8)] + ["new_whale"] * 6
    images = [f"{i:08x}.jpg" for i in range(len(labels))]
    for i, name in enumerate(images):
        write_png(folder / "train" / name, COLORS[i % 4], seed=i, size=8)
    tests = [f"t{i:07x}.jpg" for i in range(4)]
    for i, name in enumerate(tests):
        write_png(folder / "test" / name, COLORS[i % 4], seed=100 + i, size=8)
    pd.DataFrame({"Image": images, "Id": labels}).to_csv(folder / "train.csv", index=False)
    pd.DataFrame({"Image": tests, "Id": sample_cell}).to_csv(folder / "sample_submission.csv", index=False)
    if description is not None:
        (folder / "description.md").write_text(f"# Whales\n\n## Evaluation\n\n{description}\n\n## Citation\n")
    return labels


def test_a_whale_folder_is_discovered_as_top_5_retrieval(tmp_path, caplog):
    folder = tmp_path / "whales"
    labels = write_whale(folder, "Submissions are evaluated according to the Mean Average Precision @ 5 (MAP@5):")
    comp = discover_competition(folder)
    assert (comp["id_col"], comp["target_cols"], comp["task"]) == ("Image", ["Id"], "multiclass")
    assert (comp["metric"], comp["submission_format"], comp["top_k"]) == ("map_at_k", "top_k", 5)
    assert len(comp["classes"]) == 11 and comp["classes"][0] == "new_whale"  # a class like the others
    assert "unknown_class" not in comp
    config = Competition(**comp)
    # the singletons: no metric requirement (MAP@k stays defined), spread in one stratum and counted
    y = np.array([config.classes.index(c) for c in labels])
    assert metric_requirements(y, "multiclass", "map_at_k", config.classes) == []
    with caplog.at_level("INFO", logger="foldstack"):
        folds = assign_folds(len(y), 5, 0, labels=y, classes=config.classes)
    assert np.bincount(folds, minlength=5).tolist() == [6, 5, 5, 5, 5]
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rare classes")]
    # each singleton's OOF ranking cannot hold it: MAP@k counts the row as 0, what "counts them as errors" says
    assert line.startswith("rare classes: 8 class(es) (8 train rows) with fewer rows each than folds.n_splits=5")
    assert "; 8 of those rows have no row of their class in their fold's train part" in line
    assert "the CV counts them as errors" in line


def test_the_whale_slug_without_description_is_map_at_5(tmp_path):
    write_whale(tmp_path / "whale-categorization-playground")
    comp = discover_competition(tmp_path / "whale-categorization-playground")
    assert (comp["metric"], comp["top_k"]) == ("map_at_k", 5)


def test_map_at_k_named_where_it_does_not_fit_is_one_line(tmp_path):
    write_whale(tmp_path / "one", "Submissions are evaluated according to the Mean Average Precision @ 5 (MAP@5):",
                sample_cell="new_whale")
    with pytest.raises(PipelineError, match=r"sample_submission.csv: the competition is scored on MAP@k, but the "
                                            r"sample submission's cells do not each hold k"):
        discover_competition(tmp_path / "one")
    section = "# t\n\n## Evaluation\n\nScored on the mean average precision @ 5 (MAP@5).\n"
    assert described_metric(section, "multiclass")[0] == "map_at_k"
    with pytest.raises(PipelineError, match=r"scored on MAP@k, a ranking of the classes of one label per row, but "
                                            r"the target was read as a multilabel task"):
        described_metric(section, "multilabel")

