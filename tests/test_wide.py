"""predict.keep_top (wide.py): many-class competitions keep each row's best classes and hold targets as class
indices. The invariants against the dense path, the refusals, and `make all` + a pseudo round + the report end to
end, where any (rows x classes) matrix built on the way raises (ClassTargets / TopProbs refuse np.asarray)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from foldstack.artifacts import write_manifest
from foldstack.config.competition import Competition
from foldstack.errors import PipelineError
from foldstack.metrics import clipped_log_loss, comp_score, score
from foldstack.predictions import Predictions, load_predictions, rows_record, write_predictions
from foldstack.pseudo.select import select_pseudo
from foldstack.stacking.blend import blend
from foldstack.submission import build_submission, score_submission
from foldstack.wide import ClassTargets, TopProbs, keep_top, mean_top

from conftest import TINY, make_all_here, make_competition, make_project, run_here


def _probs(rng, n, k):
    logits = rng.normal(0, 2, (n, k))
    p = np.exp(logits)
    return (p / p.sum(1, keepdims=True)).astype(np.float32)


def _one_hot(labels, k):
    y = np.zeros((len(labels), k), np.float32)
    y[np.arange(len(labels)), labels] = 1
    return y


def _truncated(p, k):
    """The dense matrix a TopProbs of k stands for, with the classes not kept at 0."""
    out = np.zeros_like(p)
    best = np.argsort(-p, 1, kind="stable")[:, :k]
    np.put_along_axis(out, best, np.take_along_axis(p, best, 1), 1)
    return out


def test_class_targets_stand_for_the_one_hot_and_never_become_dense():
    y = ClassTargets([2, 0, 2, 1], 4)
    assert y.shape == (4, 4) and len(y) == 4
    assert np.array_equal(y[2], [0, 0, 1, 0]) and y[2].dtype == np.float32
    assert np.array_equal(y[np.array([3, 0])].labels, [1, 2])
    assert np.array_equal(y[np.array([True, False, True, False])].labels, [2, 2])
    assert np.array_equal(y.sum(0), [1, 1, 2, 0])
    assert np.array_equal(ClassTargets.concat([y, ClassTargets([3], 4)]).labels, [2, 0, 2, 1, 3])
    with pytest.raises(PipelineError, match="made dense"):
        np.asarray(y)
    with pytest.raises(PipelineError, match="made dense"):
        np.asarray(TopProbs.from_dense(np.eye(3), 2))


def test_top_probs_keep_each_rows_best_classes_in_order():
    rng = np.random.default_rng(0)
    p = _probs(rng, 50, 9)
    top = TopProbs.from_dense(p, 3)
    order = np.argsort(-p, 1, kind="stable")[:, :3]
    assert np.array_equal(top.classes, order)
    assert np.array_equal(top.probs, np.take_along_axis(p, order, 1))
    assert np.array_equal(top.argmax(), p.argmax(1)) and np.allclose(top.max(), p.max(1))
    assert np.allclose(top.residual(), 1 - np.take_along_axis(p, order, 1).sum(1), atol=1e-6)
    labels = rng.integers(0, 9, 50)
    kept = (order == labels[:, None]).any(1)
    expected = np.where(kept, p[np.arange(50), labels], top.residual() / 6)
    assert np.allclose(top.prob_of(labels), expected, atol=1e-6)
    rows = TopProbs.empty(50, 3, 9)
    assert rows.missing().all()
    rows[np.arange(0, 50, 2)] = top[np.arange(0, 50, 2)]
    rows[np.arange(1, 50, 2)] = top[np.arange(1, 50, 2)]
    assert not rows.missing().any() and top.equal(rows, 0.0)


def test_metrics_on_kept_classes_equal_the_dense_metrics():
    rng = np.random.default_rng(1)
    p, labels = _probs(rng, 200, 12), rng.integers(0, 12, 200)
    y, wide_y = _one_hot(labels, 12), ClassTargets(labels, 12)
    for k in (1, 4, 12):
        top = TopProbs.from_dense(p, k)
        for metric in ("accuracy", "macro_f1", "f_beta", "qwk"):
            assert score(metric, wide_y, top, "multiclass") == pytest.approx(score(metric, y, p, "multiclass"))
        assert score("map_at_k", wide_y, top, "multiclass", top_k=1) == pytest.approx(
            score("map_at_k", y, p, "multiclass", top_k=1))
    # all classes kept: log loss exact; fewer: the residual spread evenly is what the true class gets
    assert score("log_loss", wide_y, TopProbs.from_dense(p, 12), "multiclass") == pytest.approx(
        clipped_log_loss(y, p, "multiclass"), rel=1e-5)
    top = TopProbs.from_dense(p, 4)
    spread = _truncated(p, 4) + (1 - _truncated(p, 4).sum(1, keepdims=True)) / 8 * (_truncated(p, 4) == 0)
    assert score("log_loss", wide_y, top, "multiclass") == pytest.approx(
        clipped_log_loss(y, spread, "multiclass"), rel=1e-5)
    with pytest.raises(PipelineError, match="predict.keep_top=0"):
        score("roc_auc", wide_y, top, "multiclass")
    with pytest.raises(PipelineError, match="at least 5"):
        score("map_at_k", wide_y, top, "multiclass", top_k=5)


def test_the_mean_of_kept_classes_is_the_dense_mean_of_what_each_kept():
    rng = np.random.default_rng(2)
    a, b = _probs(rng, 300, 20), _probs(rng, 300, 20)
    for k, weights in ((20, None), (5, None), (5, [0.2, 0.8]), (1, [0.5, 0.5])):
        w = np.array([0.5, 0.5] if weights is None else weights)
        got = mean_top([TopProbs.from_dense(a, k), TopProbs.from_dense(b, k)], weights)
        dense = w[0] * _truncated(a, k) + w[1] * _truncated(b, k)
        expected = TopProbs.from_dense(dense, k)
        assert np.array_equal(got.classes, expected.classes)
        assert np.allclose(got.probs, expected.probs, atol=1e-6)
    got = blend("mean", [TopProbs.from_dense(a, 3), TopProbs.from_dense(b, 3)], "multiclass")
    assert np.allclose(got.probs, TopProbs.from_dense((_truncated(a, 3) + _truncated(b, 3)) / 2, 3).probs, atol=1e-6)
    with pytest.raises(PipelineError, match="blend 'rank'"):
        blend("rank", [TopProbs.from_dense(a, 3)], "multiclass")
    mean_top([TopProbs.from_dense(a, 3)] * 2)  # one input twice: itself
    assert np.allclose(mean_top([TopProbs.from_dense(a, 3)] * 2).probs, TopProbs.from_dense(a, 3).probs)


def test_kept_predictions_round_trip_and_bad_class_indices_are_refused(tmp_path):
    rng = np.random.default_rng(3)
    ids, test_ids = [f"r{i}" for i in range(30)], [f"t{i}" for i in range(10)]
    oof, test = TopProbs.from_dense(_probs(rng, 30, 15), 4), TopProbs.from_dense(_probs(rng, 10, 15), 4)
    folder = tmp_path / "p"
    folder.mkdir()
    write_predictions(folder, ids, test_ids, [f"c{i}" for i in range(15)], Predictions(oof, test, np.arange(30) % 3))
    write_manifest(folder, "predict", "p", {}, fold_key="f", rows=rows_record(ids, test_ids))
    assert sorted(f.name for f in folder.glob("*.npy")) == ["folds.npy", "oof.npy", "oof_classes.npy",
                                                             "test.npy", "test_classes.npy"]
    back = load_predictions(folder, ids, test_ids, 15)
    assert back.oof.equal(oof, 0) and back.test.equal(test, 0) and back.oof.n_classes == 15
    np.save(folder / "test_classes.npy", np.full((10, 4), 15, np.int32))
    with pytest.raises(PipelineError, match=r"test_classes.npy: class indices outside 0..14"):
        load_predictions(folder, ids, test_ids, 15)


def test_submissions_and_pseudo_labels_from_kept_classes_equal_the_dense_ones():
    rng = np.random.default_rng(4)
    classes = [f"c{i}" for i in range(10)]
    comp = Competition(task="multiclass", classes=classes, target_cols=["label"], metric="macro_f1",
                       submission_columns=["id", "label"], submission_format="label")
    p = _probs(rng, 40, 10)
    ids = [f"t{i}" for i in range(40)]
    dense, wide = build_submission(comp, ids, p), build_submission(comp, ids, TopProbs.from_dense(p, 2))
    assert dense.equals(wide)
    truth = pd.DataFrame({"id": ids, "label": [classes[i] for i in rng.integers(0, 10, 40)]})
    expected = comp_score(comp, _one_hot([classes.index(c) for c in truth.label], 10), _one_hot(p.argmax(1), 10))
    assert score_submission(wide, truth, comp, "labels") == pytest.approx(expected)
    ranked = comp.model_copy(update={"submission_format": "top_k", "top_k": 3, "metric": "map_at_k"})
    assert build_submission(ranked, ids, TopProbs.from_dense(p, 3)).equals(build_submission(ranked, ids, p))
    with pytest.raises(PipelineError, match="top 3 of 2 kept"):
        build_submission(ranked, ids, TopProbs.from_dense(p, 2))
    columns = comp.model_copy(update={"submission_format": "class_columns", "submission_columns": ["id", *classes]})
    with pytest.raises(PipelineError, match="submission format class_columns needs every class"):
        build_submission(columns, ids, TopProbs.from_dense(p, 2))
    for rule in ("threshold", "top_fraction"):
        d = select_pseudo(p, "multiclass", rule, 0.3, 0.5)
        w = select_pseudo(TopProbs.from_dense(p, 2), "multiclass", rule, 0.3, 0.5)
        assert np.array_equal(d.rows, w.rows) and np.array_equal(d.targets.argmax(1), w.targets.labels)
        assert np.allclose(d.confidence, w.confidence)
    with pytest.raises(PipelineError, match="pseudo.soft"):
        select_pseudo(TopProbs.from_dense(p, 2), "multiclass", "all", soft=True)


def test_class_weights_and_ddp_gathering_work_on_kept_classes(monkeypatch):
    import foldstack.distributed as dist
    from foldstack.loss.weighted import class_weights_from_targets

    labels = np.array([0, 0, 0, 1, 2, 2])
    assert np.array_equal(class_weights_from_targets(ClassTargets(labels, 4), "multiclass"),
                          class_weights_from_targets(_one_hot(labels, 4), "multiclass"))
    whole = TopProbs.from_dense(_probs(np.random.default_rng(5), 7, 6), 2)
    shards = [whole[np.arange(r, 7, 2)] for r in range(2)]  # dist.shard's interleaving: rank r gets r, r + 2, ...
    monkeypatch.setattr(dist, "active", lambda: True)
    monkeypatch.setattr(dist, "world_size", lambda: 2)
    monkeypatch.setattr(dist.dist, "all_gather_object", lambda parts, part: parts.__setitem__(slice(None), shards))
    assert dist.gather_shards(shards[0], 7).equal(whole, 0)


def test_auto_keeps_the_best_classes_only_above_a_billion_cells():
    from foldstack.config.levels import Predict

    comp = Competition(task="multiclass", classes=[str(i) for i in range(15_501)], target_cols=["label"])
    assert keep_top(comp, Predict(), 839_772) == 20  # herbarium
    assert keep_top(comp, Predict(), 50_000) == 0
    assert keep_top(comp, Predict(keep_top=0), 839_772) == 0
    tags = comp.model_copy(update={"task": "multilabel"})
    assert keep_top(tags, Predict(), 839_772) == 0
    with pytest.raises(PipelineError, match="for multiclass competitions"):
        keep_top(tags, Predict(keep_top=5), 100)
    with pytest.raises(PipelineError, match="not fewer than the 3 classes"):
        keep_top(comp.model_copy(update={"classes": ["a", "b", "c"]}), Predict(keep_top=3), 100)


CLASSES = [f"k{i:02d}" for i in range(12)]


@pytest.mark.slow
def test_make_all_pseudo_and_report_keep_the_best_classes_and_match_the_dense_run(tmp_path):
    root = make_project(tmp_path / "project")
    make_competition(root, "many", n_train=96, n_test=24, classes=CLASSES)
    common = ["stack.compare=[mean,rank,weighted]"]

    def run(top):
        runs = make_all_here(root, "many", *common, f"predict.keep_top={top}")
        [line] = [x for x in runs["03_predict.py"].stderr.splitlines() if "wrote OOF" in x]
        folder = root / line.split("-> ")[-1]
        return runs, folder, (root / "submission.csv").read_text()

    wide_runs, wide, wide_sub = run(3)
    [line] = [x for x in wide_runs["05_stack.py"].stderr.splitlines() if "wrote blend:mean" in x]
    stack = root / line.split("-> ")[-1]
    assert "keeping each row's 3 most probable of 12 classes" in wide_runs["03_predict.py"].stderr
    assert "not comparing rank, weighted" in wide_runs["05_stack.py"].stderr
    assert np.load(wide / "oof.npy").shape == (96, 3) and np.load(wide / "oof_classes.npy").shape == (96, 3)
    assert not (wide / "oof.csv").exists()
    dense_runs, dense, dense_sub = run(0)
    assert "up to date" in " ".join(dense_runs["02_train.py"].stderr.splitlines()[-3:])  # the same models
    p = np.load(dense / "oof.npy")
    kept = TopProbs.from_dense(p, 3)
    assert np.array_equal(kept.classes, np.load(wide / "oof_classes.npy"))
    assert np.allclose(kept.probs, np.load(wide / "oof.npy"), atol=1e-6)
    test = TopProbs.from_dense(np.load(dense / "test.npy"), 3)
    assert np.array_equal(test.classes, np.load(wide / "test_classes.npy"))
    metrics = [json.loads((f / "manifest.json").read_text())["metrics"] for f in (wide, dense)]
    assert metrics[0]["accuracy"] == pytest.approx(metrics[1]["accuracy"])
    assert metrics[0]["fold_scores"] == pytest.approx(metrics[1]["fold_scores"])
    assert wide_sub == dense_sub  # labels: the argmax, kept or not
    assert json.loads((wide / "manifest.json").read_text())["keep_top"] == 3
    ranked = {}  # make predict IMAGES=: the same ranking from the kept classes as from the dense probabilities
    for top in (3, 0):
        out = root / f"ranked{top}.csv"
        run_here(root, "predict_images.py", "many", *TINY, f"predict.keep_top={top}",
                 extra=["--images", str(root / "input" / "many" / "test"), "--top-k", "3", "--out", str(out)])
        ranked[top] = pd.read_csv(out)
    columns = ["image", "top1", "top2", "top3"]
    assert ranked[3][columns].equals(ranked[0][columns]) and len(ranked[3]) == 24
    assert np.allclose(ranked[3][["p1", "p2", "p3"]], ranked[0][["p1", "p2", "p3"]], atol=1e-6)

    # a pseudo round on the kept classes: hard labels as class indices, trained, predicted and stacked
    proc = run_here(root, "04_pseudo.py", "many", *TINY, *common, "predict.keep_top=3", "pseudo.rule=all",
                    extra=["--round", "1"])
    assert "round 1 (24 pseudo rows)" in proc.stdout
    [pseudo] = (root / "pseudo" / "many" / "round1").iterdir()
    labels = np.load(pseudo / "targets.npy")
    assert labels.shape == (24,) and labels.dtype.kind == "i"
    assert np.array_equal(labels, np.load(stack / "test_classes.npy")[:, 0])
    assert pd.read_csv(pseudo / "pseudo.csv")["label"].tolist() == [CLASSES[i] for i in labels]

    proc = run_here(root, "audit.py", "many", *TINY, *common, "predict.keep_top=3")
    assert "FAIL" not in proc.stdout and "oof" in proc.stdout  # the kept predictions audited like dense ones

    proc = run_here(root, "report.py", "many", *TINY, *common, "predict.keep_top=3")
    pages = list((root / "reports" / "many").rglob("per_class.csv"))
    assert pages, proc.stderr
    table = pd.read_csv(pages[0])
    assert table["support"].sum() == 96 and len(table) == 12


def test_the_class_distribution_of_thousands_of_classes_is_drawn_as_lines(tmp_path):
    import cv2

    from foldstack.report import plots

    rng = np.random.default_rng(6)
    train = np.maximum(1, rng.lognormal(2, 1.2, 5000).astype(int))
    frame = pd.DataFrame({"class": [str(i) for i in range(5000)], "train": train, "fold_0": rng.binomial(train, 0.5),
                          "test_predicted": rng.binomial(train, 0.1)})
    plots.class_distribution(frame, tmp_path / "d.png")  # 15,000 bars took minutes; three lines do not
    image = cv2.imread(str(tmp_path / "d.png"))
    colours = {tuple(c) for c in image.reshape(-1, 3)}
    assert image.shape[1] > 600 and len(colours) > 20  # three coloured lines and the axes, not a blank canvas
