"""make report: the static HTML report of what is on disk, its values against independent computations, its CSVs
against its HTML tables, and the pages rendered in headless Chromium (skipped without it)."""
import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import (TINY, chromium, copy_project, distinct_colours, make_competition, make_project, needs_browser,
                      run_here, run_make, screenshot)

STACK = ["stack.experiments=[baseline,smooth]"]
SMOOTH = "loss:\n  label_smoothing: 0.1\npredict:\n  tta: []\n"  # the second experiment: no TTA, smoothed loss


def build(root: Path, kind: str | None, experiments: tuple, settings: list, pseudo_round: bool = False):
    """A tiny competition of `kind` (None: root is a copy of a project that has one): folds, each experiment
    trained and predicted, the stack [, pseudo-label round 1] (the scripts in this process: run_here), then
    `make report`. Returns (reports/c, the make run)."""
    if kind is not None:
        make_project(root)
        make_competition(root, "c", kind)
    (root / "configs" / "exp" / "smooth.yaml").write_text(SMOOTH)
    run_here(root, "01_folds.py", "c", *settings)
    for exp in experiments:
        run_here(root, "02_train.py", "c", *settings, extra=["--exp", exp])
        run_here(root, "03_predict.py", "c", *settings, extra=["--exp", exp])
    run_here(root, "05_stack.py", "c", *settings)
    if pseudo_round:
        run_here(root, "04_pseudo.py", "c", *settings, extra=["--round", "1"])
    proc = run_make(root, "report", COMP="c", OVERRIDES=" ".join(settings))
    return root / "reports" / "c", proc


@pytest.fixture(scope="module")
def multiclass(tiny_trained, tmp_path_factory):
    """The session's tiny project (baseline trained and predicted; its stack of the baseline alone removed) with
    a second experiment, smooth, and the stack of both."""
    root = copy_project(tiny_trained, tmp_path_factory.mktemp("report") / "p")
    shutil.rmtree(root / "stacks")
    return build(root, None, ("smooth",), [*TINY, *STACK])


@pytest.fixture(scope="module")
def multilabel(tmp_path_factory):
    """One experiment, its stack, and pseudo-label round 1 (every test row: rule all) with its own stack."""
    return build(tmp_path_factory.mktemp("report") / "p", "tags", ("baseline",), [*TINY, "pseudo.rule=all"],
                 pseudo_round=True)


class Tables(HTMLParser):
    """Every <table id=...> of a page: its headers' data-col, its body rows' data-v values and classes; and every
    relative src/href."""

    def __init__(self, text: str):
        super().__init__()
        self.tables, self.links, self.table, self.body = {}, [], None, False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.links += [a[k] for k in ("src", "href") if k in a]
        if tag == "table":
            self.table = self.tables[a["id"]] = {"columns": [], "rows": [], "classes": []}
        elif tag == "tbody":
            self.body = True
        elif tag == "th" and self.table is not None:
            self.table["columns"].append(a["data-col"])
        elif tag == "tr" and self.body:
            self.table["rows"].append([])
            self.table["classes"].append(a.get("class") or "")
        elif tag == "td" and self.body:
            self.table["rows"][-1].append(a["data-v"])

    def handle_endtag(self, tag):
        if tag == "tbody":
            self.body = False
        elif tag == "table":
            self.table = None

    def frame(self, table_id: str) -> pd.DataFrame:
        t = self.tables[table_id]
        return pd.DataFrame(t["rows"], columns=t["columns"])


def page(path: Path) -> Tables:
    return Tables(path.read_text())


def classes(root: Path) -> list[str]:
    return yaml.safe_load((root / "configs" / "c.yaml").read_text())["competition"]["classes"]


def train_labels(root: Path) -> np.ndarray:
    """The multiclass train rows' class index, read from the competition's CSV."""
    names = classes(root)
    return np.array([names.index(v) for v in pd.read_csv(root / "input" / "c" / "train.csv")["label"]])


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def models_round(root: Path, folder: Path) -> int:
    return manifest(root / manifest(folder)["inputs"]["train"]["path"] / "fold0")["pseudo_round"]


def prediction_folder(root: Path, exp: str, round_: int = 0) -> Path:
    [folder] = [p for p in (root / "oof" / "c" / exp).iterdir() if models_round(root, p) == round_]
    return folder


def the_stack(root: Path, round_: int = 0) -> Path:
    [folder] = [p for p in (root / "stacks" / "c").iterdir() if manifest(p)["pseudo_round"] == round_]
    return folder


def accuracy(labels, probs) -> float:
    return float((np.asarray(probs).argmax(1) == labels).mean())


def test_make_report_prints_the_index_last_and_links_stay_inside(multiclass):
    report, proc = multiclass
    assert proc.stdout.strip().splitlines()[-1] == str(report / "index.html")
    pages = sorted(report.glob("**/index.html"))
    stack_page = f"stack-{the_stack(report.parents[1]).name}"
    assert sorted(p.parent.name for p in pages) == sorted(["c", "baseline", "smooth", stack_page])
    for p in pages:
        for link in page(p).links:
            assert "://" not in link and not link.startswith("/"), f"{p}: {link} is not a relative link"
            assert (p.parent / link).is_file(), f"{p}: {link} does not exist"
    assert not [p for p in report.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_leaderboard_values_equal_independent_computations(multiclass):
    report, _ = multiclass
    root = report.parents[1]
    board = pd.read_csv(report / "leaderboard.csv", keep_default_na=False).set_index("level")
    stack = the_stack(root)
    stack_manifest = manifest(stack)
    blends = ["blend:mean", "blend:rank", "blend:weighted", "blend:geometric"]
    assert sorted(board.index) == sorted(["baseline (no TTA)", "baseline", "smooth", *blends])
    assert board.loc[board["submitted"] == "*"].index.tolist() == [stack_manifest["output"]] == ["blend:mean"]
    cv = pd.to_numeric(board["cv"])
    assert (np.diff(cv.to_numpy()) <= 0).all()  # best (highest accuracy) first

    labels = train_labels(root)
    for level, exp, stem in (("baseline", "baseline", "oof"), ("baseline (no TTA)", "baseline", "oof_plain"),
                             ("smooth", "smooth", "oof")):
        folder = prediction_folder(root, exp)
        oof, folds = np.load(folder / f"{stem}.npy"), np.load(folder / "folds.npy")
        per_fold = [accuracy(labels[folds == k], oof[folds == k]) for k in range(2)]
        row = board.loc[level]
        assert float(row["cv"]) == pytest.approx(accuracy(labels, oof), abs=1e-12)
        assert [float(row["fold_0"]), float(row["fold_1"])] == pytest.approx(per_fold, abs=1e-12)
        assert float(row["mean"]) == pytest.approx(np.mean(per_fold)) and float(row["std"]) == pytest.approx(
            np.std(per_fold))
        metrics, models = manifest(folder)["metrics"], root / manifest(folder)["inputs"]["train"]["path"]
        assert float(row["params_M"]) == pytest.approx(metrics["params"] / 1e6)
        assert float(row["images_per_s"]) == pytest.approx(metrics["images_per_s"])
        logs = [pd.read_csv(d / "log.csv") for d in sorted(models.glob("fold*"))]
        assert len(logs) == 2 and float(row["train_s"]) == pytest.approx(sum(log["seconds"].sum() for log in logs))
        assert row["source"] == str(folder.relative_to(root)) and row["kind"].startswith("single model")
    assert board.loc["baseline", "kind"] == "single model + TTA" and board.loc["smooth", "kind"] == "single model"
    assert board.loc["smooth", "config_diff"] == "loss.label_smoothing=0.1; predict.tta=[]"
    assert board.loc["baseline", "config_diff"] == ""  # baseline.yaml resolved with the same overrides

    stack_report = pd.read_csv(stack / "report.csv").set_index("level")
    for level in blends:
        for column in ("cv", "mean", "std", "fold_0", "fold_1"):
            assert float(board.loc[level, column]) == stack_report.loc[level, column]
        assert board.loc[level, "source"] == str(stack.relative_to(root))
    assert float(board.loc["blend:mean", "cv"]) == pytest.approx(accuracy(labels, np.load(stack / "oof.npy")))


def test_experiment_page_values(multiclass):
    from sklearn.metrics import precision_recall_fscore_support

    report, _ = multiclass
    root, folder = report.parents[1], report / "baseline"
    oof_dir = prediction_folder(root, "baseline")
    oof, folds, test = (np.load(oof_dir / f"{s}.npy") for s in ("oof", "folds", "test"))
    labels, names = train_labels(root), classes(root)
    pred = oof.argmax(1)

    counts = pd.read_csv(folder / "confusion_counts.csv").set_index("true")
    expected = np.zeros((3, 3), int)
    np.add.at(expected, (labels, pred), 1)
    assert counts.index.tolist() == names and counts.columns.tolist() == names
    assert (counts.to_numpy() == expected).all() and counts.to_numpy().sum() == len(labels) == 24
    normalised = pd.read_csv(folder / "confusion_normalised.csv").set_index("true").to_numpy()
    np.testing.assert_allclose(normalised, expected / expected.sum(1, keepdims=True))

    per_class = pd.read_csv(folder / "per_class.csv")
    p, r, f, s = precision_recall_fscore_support(labels, pred, labels=[0, 1, 2], zero_division=0)
    assert per_class["class"].tolist() == names
    for column, values in (("precision", p), ("recall", r), ("f1", f), ("support", s)):
        np.testing.assert_allclose(per_class[column], values)
    assert per_class["predicted"].tolist() == np.bincount(pred, minlength=3).tolist()

    confidence, hit = oof.max(1).astype(np.float64), (pred == labels)
    ece, rows = 0.0, []
    for b in range(10):  # bins (b/10, (b+1)/10], the first one closed
        inside = (confidence <= (b + 1) / 10) & ((confidence > b / 10) if b else True)
        if inside.any():
            ece += inside.mean() * abs(hit[inside].mean() - confidence[inside].mean())
            rows.append((b, inside.sum(), confidence[inside].mean(), hit[inside].mean()))
    calibration = pd.read_csv(folder / "calibration.csv")
    assert calibration[["bin", "rows"]].to_numpy().tolist() == [[b, n] for b, n, _, _ in rows]
    np.testing.assert_allclose(calibration["confidence"], [c for _, _, c, _ in rows], rtol=1e-6)
    np.testing.assert_allclose(calibration["observed"], [o for _, _, _, o in rows])
    html = (folder / "index.html").read_text()
    assert f"<b>{ece:.4f}</b>" in html and f"ECE {ece:.4f}" in html

    distribution = pd.read_csv(folder / "class_distribution.csv")
    assert distribution["train"].tolist() == np.bincount(labels, minlength=3).tolist()
    for k in range(2):
        assert distribution[f"fold_{k}"].tolist() == np.bincount(labels[folds == k], minlength=3).tolist()
    assert distribution["test_predicted"].tolist() == np.bincount(test.argmax(1), minlength=3).tolist()

    folds_table = pd.read_csv(folder / "folds.csv")
    assert folds_table["accuracy"].tolist() == pytest.approx([accuracy(labels[folds == k], oof[folds == k])
                                                               for k in range(2)])
    assert folds_table["rows"].tolist() == np.bincount(folds).tolist()

    mistakes = pd.read_csv(folder / "worst_mistakes.csv", dtype={"id": str})
    wrong = np.flatnonzero(pred != labels)
    assert len(mistakes) == min(24, len(wrong)) > 0 and set(mistakes["row"]) <= set(wrong)
    assert (np.diff(mistakes["confidence"]) <= 0).all()
    np.testing.assert_allclose(mistakes["confidence"], oof.max(1)[mistakes["row"]], rtol=1e-6)
    assert mistakes["true"].tolist() == [names[i] for i in labels[mistakes["row"]]]
    assert mistakes["predicted"].tolist() == [names[i] for i in pred[mistakes["row"]]]
    thumbs = sorted((folder / "mistakes").glob("*.png"))
    assert len(thumbs) == len(mistakes)
    for thumb in thumbs:
        image = cv2.imread(str(thumb))
        assert image is not None and max(image.shape[:2]) == 112 and image.std() > 1  # the noisy coloured square


def test_every_html_table_equals_its_csv(multiclass):
    report, _ = multiclass
    pairs = {"leaderboard": "leaderboard.csv", "experiments": "experiments.csv", "folds": "folds.csv",
             "confusion_counts": "confusion_counts.csv", "confusion_normalised": "confusion_normalised.csv",
             "per_class": "per_class.csv", "calibration": "calibration.csv",
             "class_distribution": "class_distribution.csv", "worst_mistakes": "worst_mistakes.csv"}
    checked = 0
    for html_page in report.glob("**/index.html"):
        tables = page(html_page)
        for table_id in tables.tables:
            shown = tables.frame(table_id)
            csv = pd.read_csv(html_page.parent / pairs[table_id], dtype=str, keep_default_na=False)
            assert shown.columns.tolist() == csv.columns.tolist(), f"{html_page}: {table_id}"
            assert shown.shape == csv.shape
            for column in csv.columns:
                a, b = pd.to_numeric(shown[column], errors="coerce"), pd.to_numeric(csv[column], errors="coerce")
                if a.notna().all() and b.notna().all():
                    np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=f"{table_id}.{column}")
                else:
                    assert shown[column].tolist() == csv[column].tolist(), f"{table_id}.{column}"
            checked += 1
    assert checked == 2 + 2 * 7 + 6  # index; baseline and smooth: every table; the stack page: no folds table


def test_multilabel_per_tag_table_pseudo_round_and_leaderboard(multilabel):
    from sklearn.metrics import f1_score, precision_recall_fscore_support, roc_auc_score

    report, _ = multilabel
    root = report.parents[1]
    names = classes(root)
    tags = pd.read_csv(root / "input" / "c" / "train.csv")["tags"]
    y = np.array([[int(n in row.split()) for n in names] for row in tags])

    board = pd.read_csv(report / "leaderboard.csv", keep_default_na=False).set_index("level")
    blends = ["blend:mean", "blend:rank", "blend:weighted", "blend:geometric"]
    levels = {0: ["baseline", "baseline (no TTA)", *blends],
              1: ["baseline (round 1)", "baseline (round 1, no TTA)", *(f"{b} (round 1)" for b in blends)]}
    assert sorted(board.index) == sorted(levels[0] + levels[1])
    for round_, names_ in levels.items():
        assert board.loc[names_, "round"].tolist() == [round_] * 6
    # make submit submits the latest round built: round 1's stack output
    assert board.loc[board["submitted"] == "*"].index.tolist() == ["blend:mean (round 1)"]
    assert board.loc["blend:mean (round 1)", "source"] == str(the_stack(root, 1).relative_to(root))
    assert board.loc["blend:mean (round 1)", "cv_tuned_thresholds"] != ""  # thresholds searched on OOF
    for round_, level in ((0, "baseline"), (1, "baseline (round 1)")):
        folder = prediction_folder(root, "baseline", round_)
        oof, folds = np.load(folder / "oof.npy"), np.load(folder / "folds.npy")
        hard = (oof > 0.5).astype(int)
        assert board.loc[level, "source"] == str(folder.relative_to(root))
        assert float(board.loc[level, "cv"]) == pytest.approx(f1_score(y, hard, average="micro"))
        for k in range(2):
            assert float(board.loc[level, f"fold_{k}"]) == pytest.approx(
                f1_score(y[folds == k], hard[folds == k], average="micro"))
    assert board.loc["baseline (round 1)", "config_diff"] == "pseudo.round=1"

    pseudo = pd.read_csv(report / "pseudo_sets.csv")
    assert pseudo[["round", "rows", "of_test_rows"]].to_numpy().tolist() == [[1, 8, 8]]  # rule all
    assert pseudo["from"].tolist() == [str(the_stack(root, 0).relative_to(root))]

    folder = prediction_folder(root, "baseline")
    oof = np.load(folder / "oof.npy")
    hard = (oof > 0.5).astype(int)
    page_dir = report / "baseline"
    per_tag = pd.read_csv(page_dir / "per_tag.csv")
    p, r, f, s = precision_recall_fscore_support(y, hard, average=None, zero_division=0)
    assert per_tag["tag"].tolist() == names
    for column, values in (("precision", p), ("recall", r), ("f1", f), ("support", s)):
        np.testing.assert_allclose(per_tag[column], values)
    np.testing.assert_allclose(per_tag["auc"], [roc_auc_score(y[:, k], oof[:, k]) for k in range(len(names))])
    assert per_tag["predicted"].tolist() == hard.sum(0).tolist()
    assert not list(page_dir.glob("confusion*")) and "per_tag" in page(page_dir / "index.html").tables
    assert (report / "baseline-round1" / "per_tag.csv").is_file()

    distribution = pd.read_csv(page_dir / "class_distribution.csv")
    assert distribution["train"].tolist() == y.sum(0).tolist()
    mistakes = pd.read_csv(page_dir / "worst_mistakes.csv")
    wrong = np.flatnonzero((hard != y).any(1))
    assert len(mistakes) == min(24, len(wrong)) and set(mistakes["row"]) <= set(wrong)


def test_binary_analysis_equals_sklearn():
    """Binary predictions have one column (the positive class): both classes in the tables."""
    from sklearn.metrics import precision_recall_fscore_support

    from foldstack.config.competition import Competition
    from foldstack.report import experiment as analysis

    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.3).astype(np.float32)[:, None]
    p = np.clip(0.45 * y[:, 0] + 0.6 * rng.random(300), 0, 1)[:, None]
    folds = np.arange(300) % 3
    comp = Competition(task="binary", classes=["no", "yes"], metric="roc_auc")
    truth, pred = y[:, 0].astype(int), (p[:, 0] > 0.5).astype(int)

    counts, normalised = analysis.confusion(y, p, comp)
    expected = np.array([[((truth == t) & (pred == q)).sum() for q in (0, 1)] for t in (0, 1)])
    assert counts.columns.tolist() == ["no", "yes"] and (counts.to_numpy() == expected).all()
    np.testing.assert_allclose(normalised.to_numpy(), expected / expected.sum(1, keepdims=True))
    scores = analysis.per_class(y, p, comp)
    for column, values in zip(("precision", "recall", "f1", "support"),
                              precision_recall_fscore_support(truth, pred, labels=[0, 1], zero_division=0)):
        np.testing.assert_allclose(scores[column], values)

    table, ece = analysis.calibration(y, p, "binary")
    edges = np.linspace(0, 1, 11)
    expected_ece = 0.0
    for b in range(10):
        inside = (p[:, 0] <= edges[b + 1]) & ((p[:, 0] > edges[b]) if b else True)
        if inside.any():
            expected_ece += inside.mean() * abs(truth[inside].mean() - p[inside, 0].mean())
    assert ece == pytest.approx(expected_ece) and table["rows"].sum() == 300

    distribution = analysis.class_distribution(y, folds, p, comp)
    assert distribution["train"].tolist() == [int((truth == 0).sum()), int(truth.sum())]
    assert distribution["test_predicted"].tolist() == [int((pred == 0).sum()), int(pred.sum())]
    mistakes = analysis.worst_mistakes(y, p, folds, [f"r{i}" for i in range(300)], comp, n=5)
    decided = np.where(pred == 1, p[:, 0], 1 - p[:, 0])
    wrong = np.flatnonzero(pred != truth)
    assert mistakes["row"].tolist() == wrong[np.argsort(-decided[wrong], kind="stable")][:5].tolist()


def test_models_removed_still_report_and_a_bad_artifact_is_one_line(multiclass, tmp_path):
    report, _ = multiclass
    root = tmp_path / "copy"
    shutil.copytree(report.parents[1], root, symlinks=True, ignore=shutil.ignore_patterns("*.pt"))
    shutil.rmtree(root / "models" / "c" / "smooth")  # removed to save disk: its predictions still report
    run_here(root, "report.py", "c", *TINY, *STACK)
    board = pd.read_csv(root / "reports" / "c" / "leaderboard.csv", keep_default_na=False).set_index("level")
    gone = "smooth (round ?)"  # the models' manifests held their pseudo-label round
    assert board.loc[gone, ["train_s", "round"]].tolist() == ["", ""] and board.loc["baseline", "train_s"] != ""
    assert board.loc[gone, "cv"] == pd.read_csv(report / "leaderboard.csv").set_index("level").loc["smooth", "cv"]
    assert "models no longer on disk (no training curves, time or config): smooth (round ?)" in (
        root / "reports" / "c" / "index.html").read_text()
    assert "folds" not in page(root / "reports" / "c" / "smooth-round_unknown" / "index.html").tables

    before = (root / "reports" / "c" / "index.html").read_bytes()
    [oof] = (root / "oof" / "c" / "smooth").glob("*/oof.npy")
    oof.write_bytes(b"not an array")
    proc = run_here(root, "report.py", "c", *TINY, *STACK, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == f"error: cannot read predictions {oof}: ValueError"
    assert (root / "reports" / "c" / "index.html").read_bytes() == before
    assert sorted(p.name for p in (root / "reports").iterdir()) == ["c"]

    empty = make_project(tmp_path / "empty")
    make_competition(empty, "c", "label", n_train=8, n_test=4)
    proc = run_here(empty, "report.py", "c", *TINY, check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].startswith(
        "error: nothing to report: no OOF predictions")
    assert not (empty / "reports").exists()


def test_the_swap_keeps_the_old_report_until_the_new_one_is_complete(tmp_path):
    from foldstack.report.publish import rebuilt

    final = tmp_path / "reports" / "c"
    with rebuilt(final) as tmp:
        (tmp / "index.html").write_text("one")
    with pytest.raises(RuntimeError):
        with rebuilt(final) as tmp:
            (tmp / "index.html").write_text("half")
            raise RuntimeError("killed mid-report")
    assert (final / "index.html").read_text() == "one" and sorted(p.name for p in final.parent.iterdir()) == ["c"]
    # a run killed between its two renames: the previous report is hidden and no report is in place
    dead = 4194305  # above Linux's largest pid: no such process
    final.rename(final.parent / f".c.old-{dead}")
    (final.parent / f".c.tmp-{dead}").mkdir()
    with pytest.raises(RuntimeError):
        with rebuilt(final):
            raise RuntimeError("fails before the swap")
    assert (final / "index.html").read_text() == "one" and sorted(p.name for p in final.parent.iterdir()) == ["c"]


@needs_browser
def test_pages_render_in_chromium(multiclass, tmp_path):
    report, _ = multiclass
    profile = tmp_path / "profile"
    index = screenshot(report / "index.html", tmp_path / "index.png", 1000, profile)
    experiment = screenshot(report / "baseline" / "index.html", tmp_path / "baseline.png", 3000, profile)
    for image in (index, experiment):
        assert distinct_colours(image) > 100 and image.std() > 20  # text, tables and plots, not a blank page
    leaderboard = index[100:330]  # under the header: the leaderboard's first rows
    assert distinct_colours(leaderboard) > 50 and leaderboard.std() > 10
    assert experiment[600:1200].std() > 10  # the curves / confusion matrix area

    # the DOM after the inline script ran: index.html#sort=<column> sorts on load (- for descending)
    dom = Tables(chromium("--dump-dom", (report / "index.html").as_uri() + "#sort=level", profile=profile).stdout)
    board = dom.frame("leaderboard")
    assert board["level"].tolist() == sorted(pd.read_csv(report / "leaderboard.csv")["level"])
    marked = [level for level, css in zip(board["level"], dom.tables["leaderboard"]["classes"]) if css]
    assert marked == ["blend:mean"]  # the level make submit would submit
    by_time = Tables(chromium("--dump-dom", (report / "index.html").as_uri() + "#sort=-train_s",
                              profile=profile).stdout).frame("leaderboard")["train_s"].tolist()
    timed = [float(v) for v in by_time if v]
    assert timed == sorted(timed, reverse=True) and len(timed) == 3 and by_time[3:] == [""] * 4

    keep = os.environ.get("REPORT_SCREENSHOTS")  # a folder to keep the screenshots in (CI artifacts, review)
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for png in ("index.png", "baseline.png"):
            shutil.copy(tmp_path / png, Path(keep) / png)


def test_thousands_of_classes_get_the_per_class_table_and_no_k_by_k_matrix(tmp_path):
    """herbarium-sized class counts: the confusion matrix (K x K: 1.9 GB at 15,501 classes) is left out and said
    so; the per-class table holds every class with its support."""
    from foldstack.config.competition import Competition
    from foldstack.report.pages import MAX_CONFUSION, errors_sections

    k = MAX_CONFUSION + 1
    comp = Competition(task="multiclass", classes=[f"c{i}" for i in range(k)], metric="macro_f1")
    rng = np.random.default_rng(0)
    y = np.eye(k, dtype=np.float32)[rng.integers(0, k, 60)]
    oof = rng.random((60, k)).astype(np.float32)
    sections = errors_sections(tmp_path, y, oof, comp)
    assert f"{k} classes: no confusion matrix above {MAX_CONFUSION}" in sections[0]
    assert not (tmp_path / "confusion.png").exists() and not (tmp_path / "confusion_counts.csv").exists()
    table = pd.read_csv(tmp_path / "per_class.csv")
    assert len(table) == k and table["support"].sum() == 60


def test_the_pseudo_round_is_tracked_with_the_cv_before_and_after(multilabel):
    """runtime.trackers' default: `make pseudo ROUND=1` logs its rows and the stack output's CV of rounds 0 and 1,
    read back with TensorBoard's event reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root = multilabel[0].parents[1]
    (run,) = root.glob("runs/c/baseline/*/pseudo-round1")
    events = EventAccumulator(str(run))
    events.Reload()
    logged = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    (pseudo_set,) = root.glob("pseudo/c/round1/*/manifest.json")
    before, after = (manifest(the_stack(root, r)) for r in (0, 1))
    assert logged == {"pseudo_rows": [(0, json.loads(pseudo_set.read_text())["metrics"]["rows"])],
                      "cv_before": [(0, pytest.approx(before["metrics"][before["output"]], abs=1e-6))],
                      "cv_after": [(0, pytest.approx(after["metrics"][after["output"]], abs=1e-6))]}
    assert run.parent.name == pseudo_set.parent.name  # named by the pseudo-label set's key
