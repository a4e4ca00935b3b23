"""The report's pages, each with its tables as CSV beside it (the same values: the HTML cells carry them):

    reports/<comp>/index.html            leaderboard.csv, experiments.csv, [pseudo_sets.csv]
    reports/<comp>/<experiment>/index.html   folds.csv, curves.png, [race.csv: a budget plan's race],
                                         confusion_*.csv + confusion.png (per_tag.csv for multilabel), per_class.csv, calibration.csv + reliability.png,
                                         class_distribution.csv + .png, worst_mistakes.csv + mistakes/*.png
    reports/<comp>/stack-<key>/index.html    the same analysis of a stack's output level (no training curves)
"""
import json
import time
from html import escape

import numpy as np
import pandas as pd

from ..metrics import HIGHER_IS_BETTER, comp_score
from ..utils.io import atomic_write_csv, atomic_write_text
from .regression import regression_sections
from . import experiment as analysis
from . import html, plots
from .leaderboard import SUBMITTED

MAX_MATRIX_TABLE = 30  # classes: a larger confusion matrix is shown as the plot, its values in the CSVs only
MAX_CONFUSION = 1000  # classes: above, no confusion matrix at all (K x K), the per-class table only
LEADERBOARD_LABELS = {"submitted": "\u2605", "cv": "CV", "cv_tuned_thresholds": "CV tuned", "train_s": "train",
                      "params_M": "params M", "images_per_s": "img/s", "config_diff": "vs baseline",
                      "source": "folder"}
LEADERBOARD_TITLES = {
    "submitted": "the level make submit would submit", "cv": "the metric on all OOF rows at once (pooled)",
    "mean": "mean of the per-fold scores", "std": "standard deviation of the per-fold scores",
    "cv_tuned_thresholds": "CV at the thresholds the stack searched on OOF (per tag: on these rows, optimistic; "
                           "ordinal cuts: each fold's from the other folds, honest)",
    "train_s": "wall time of every epoch of every fold", "params_M": "model parameters, millions",
    "images_per_s": "test-time inference speed (all TTA views)",
    "config_diff": "dotted config keys whose value differs from configs/exp/baseline.yaml resolved",
    "source": "the artifact folder the row is read from"}


def write_csv(folder, name: str, frame) -> str:
    atomic_write_csv(folder / name, frame)
    return name


def leaderboard_section(folder, board, disk, metric: str) -> str:
    shown = board.drop(columns=["page"])
    labels = {**LEADERBOARD_LABELS, **{c: c.replace("_", " ") for c in shown.columns if c.startswith("fold_")}}
    links = [f"{page}/index.html" if page else "" for page in board["page"]]
    rows = ["submitted" if mark == SUBMITTED else "" for mark in board["submitted"]]
    note = (f"Every level on disk, best {metric} first ({'higher' if HIGHER_IS_BETTER[metric] else 'lower'} is "
            f"better); click a header to sort. CV: the competition metric on all OOF rows at once; mean and std: "
            f"over the per-fold scores. ")
    if disk.submitted is None:
        note += f"No level is marked: <code>make submit</code> would stop: {escape(disk.submit_note)}."
    else:
        note += ('<span class="badge">&#9733; submit</span> the level <code>make submit</code> would submit '
                 "(submit.source, submit.round as configured).")
    formats = {"submitted": lambda v: "\u2605" if v else "",
               "source": lambda v: v.rsplit("/", 1)[-1]}  # its key; data-v and the CSV hold the path
    table = html.table(shown, "leaderboard", labels=labels, links={"level": links}, row_classes=rows,
                       formats=formats, titles=LEADERBOARD_TITLES)
    return html.section("Leaderboard", table, note, write_csv(folder, "leaderboard.csv", shown))


def experiments_section(folder, ctx, disk) -> str:
    rows = []
    for exp in disk.experiments:
        cfg = exp.config
        rows.append({"experiment": exp.label, "round": exp.round, "teacher": exp.teacher or "",
                     "model": cfg.get("model", {}).get("name", ""), "img_size": cfg.get("data", {}).get("img_size"),
                     "epochs": max((len(log) for log in exp.logs), default=None), "folds": int(exp.preds.folds.max()) + 1,
                     "train_s": exp.train_seconds, "source": str(exp.path.relative_to(ctx.root))})
    frame = pd.DataFrame(rows)
    for column in ("round", "img_size", "epochs"):  # integers, empty where the models are gone
        frame[column] = frame[column].astype("Int64")
    links = [f"{exp.slug}/index.html" for exp in disk.experiments]
    table = html.table(frame, "experiments", links={"experiment": links})
    return html.section("Experiments", table, "One page each: training curves, confusion matrix, per-class scores, "
                                              "calibration, class distribution, worst mistakes.",
                        write_csv(folder, "experiments.csv", frame))


def pseudo_section(folder, ctx, disk) -> str:
    if not disk.pseudo_sets:
        return ""
    frame = pd.DataFrame([{"round": s.round, "rows": s.manifest.get("metrics", {}).get("rows"),
                           "of_test_rows": s.manifest.get("metrics", {}).get("of_test_rows"),
                           "mean_confidence": s.manifest.get("metrics", {}).get("mean_confidence"),
                           "from": s.manifest.get("inputs", {}).get("source", {}).get("path", ""),
                           "source": str(s.path.relative_to(ctx.root))} for s in disk.pseudo_sets])
    return html.section("Pseudo-label sets", html.table(frame, "pseudo_sets"),
                        "Test rows selected for each round (their models and levels are the round's rows above).",
                        write_csv(folder, "pseudo_sets.csv", frame))


def index_page(folder, ctx, disk, board) -> None:
    comp = ctx.cfg.competition
    body = [leaderboard_section(folder, board, disk, comp.metric), experiments_section(folder, ctx, disk),
            pseudo_section(folder, ctx, disk)]
    if disk.notes:
        body.append(html.section("Notes", "<ul>" + "".join(f"<li>{escape(n)}</li>" for n in disk.notes)
                                 + "</ul>"))
    subtitle = (f"{escape(comp.task)}, metric {escape(comp.metric)}; {len(ctx.train.ids)} train rows, "
                f"{len(ctx.test.ids)} test rows; built {time.strftime('%Y-%m-%d %H:%M')} from what is on disk")
    atomic_write_text(folder / "index.html", html.page(f"{ctx.comp}: report", "\n".join(body), subtitle))


def folds_section(folder, experiment, y, comp) -> str:
    frame = analysis.fold_table(experiment, y, comp)
    plots.fold_curves(experiment.logs, comp.metric, folder / "curves.png", experiment.label)
    body = html.table(frame, "folds") + html.figure("curves.png", "Loss, validation metric and LR of every fold")
    return html.section("Folds and training curves", body, "", write_csv(folder, "folds.csv", frame))


def errors_sections(folder, y, oof, comp) -> list[str]:
    """Multilabel: the per-tag table; else the confusion matrix and the per-class table."""
    scores = analysis.per_class(y, oof, comp)
    if comp.task == "multilabel":
        note = (f"Each tag on its own at competition.tag_threshold={comp.tag_threshold}: precision, recall, F1, "
                f"rows with the tag (support), rows predicted with it, ROC AUC of its probability.")
        return [html.section("Per-tag scores", html.table(scores, "per_tag"), note,
                             write_csv(folder, "per_tag.csv", scores))]
    per_class_section = html.section("Per-class precision, recall, F1", html.table(scores, "per_class"), "",
                                     write_csv(folder, "per_class.csv", scores))
    if len(comp.classes) > MAX_CONFUSION:  # herbarium: 15,501^2 cells are 1.9 GB a matrix and no picture
        return [html.section("OOF confusion matrix", f'<p class="note">{len(comp.classes)} classes: no confusion '
                             f"matrix above {MAX_CONFUSION} (its K x K cells); the per-class table below.</p>"),
                per_class_section]
    counts, normalised = analysis.confusion(y, oof, comp)
    plots.confusion(counts, normalised, folder / "confusion.png")
    matrix = html.figure("confusion.png", "Counts and row-normalised")
    if len(counts) <= MAX_MATRIX_TABLE:
        matrix += html.row(
            "<h3>counts</h3>" + html.table(counts, "confusion_counts", index=True, sortable=False),
            "<h3>row-normalised</h3>" + html.table(normalised, "confusion_normalised", index=True, sortable=False))
    else:
        matrix += f'<p class="note">{len(counts)} classes: the matrices are in the CSVs only.</p>'
    csvs = [write_csv(folder, "confusion_counts.csv", counts.reset_index()),
            write_csv(folder, "confusion_normalised.csv", normalised.reset_index())]
    rule = "argmax" if comp.task == "multiclass" else f"probability > {comp.tag_threshold}"
    return [html.section("OOF confusion matrix", matrix, f"True class by row, predicted ({rule}) by column; "
                                                         f"every train row once, by the fold model that held it "
                                                         f"out.", csvs),
            per_class_section]


def calibration_section(folder, y, oof, comp) -> tuple[str, float]:
    table, ece = analysis.calibration(y, oof, comp.task)
    what = ("top-class probability vs accuracy" if comp.task == "multiclass"
            else "every probability vs presence" if comp.task == "multilabel" else "probability vs positive rate")
    plots.reliability(table, ece, folder / "reliability.png", what)
    note = (f"Expected calibration error (ECE) <b>{ece:.4f}</b>: rows-weighted mean |observed - confidence| over "
            f"{analysis.N_BINS} equal-width bins; {escape(what)}.")
    body = html.row(html.figure("reliability.png", "Reliability diagram"), html.table(table, "calibration"))
    return html.section("Calibration", body, note, write_csv(folder, "calibration.csv", table)), ece


def distribution_section(folder, y, preds, comp) -> str:
    frame = analysis.class_distribution(y, preds.folds, preds.test, comp)
    plots.class_distribution(frame, folder / "class_distribution.png")
    body = html.row(html.figure("class_distribution.png", "Shares of rows per class"),
                    html.table(frame, "class_distribution"))
    unit = "rows with each tag" if comp.task == "multilabel" else "rows per class"
    return html.section("Class distribution", body, f"{unit.capitalize()}: train, each validation fold, and the "
                                                    f"test rows as predicted.",
                        write_csv(folder, "class_distribution.csv", frame))


def mistakes_section(folder, ctx, y, preds, comp, n: int = 24) -> str:
    frame = analysis.worst_mistakes(y, preds.oof, preds.folds, ctx.train.ids, comp, n)
    (folder / "mistakes").mkdir(exist_ok=True)
    cells = []
    for rank, row in enumerate(frame.itertuples(index=False)):
        src = f"mistakes/{rank:03d}.png"
        plots.thumbnail(ctx.train.samples.read(row.row), folder / src)
        cells.append(f'<figure><img src="{src}" alt="{escape(str(row.id))}"><figcaption>{escape(str(row.id))}<br>'
                     f'<span class="true">true: {escape(row.true)}</span><br><span class="pred">predicted: '
                     f'{escape(row.predicted)}</span><br>confidence {row.confidence:.3f}</figcaption></figure>')
    grid = f'<div class="grid" id="mistakes">{"".join(cells)}</div>' if cells else "<p>No OOF mistakes.</p>"
    note = f"The {len(frame)} wrong OOF rows the model was surest of (confidence of the wrong prediction)."
    return html.section("Worst OOF mistakes", grid + html.table(frame, "worst_mistakes"), note,
                        write_csv(folder, "worst_mistakes.csv", frame))


def race_frame(race: dict) -> pd.DataFrame:
    """The budget race as a table: a row per candidate, its metric and epoch at each rung, seconds, outcome."""
    rows = []
    for e in race["entrants"]:
        row = {"candidate": e["label"]}
        for r, result in enumerate(e["rungs"]):
            row.update({f"rung {r + 1} {race['metric']}": result["metric"], f"rung {r + 1} epoch": result["epoch"]})
        row.update(trained_s=e["rungs"][-1]["seconds"] if e["rungs"] else np.nan,
                   outcome="won" if e["out_at"] is None else f"out after rung {e['out_at'] + 1}")
        rows.append(row)
    return pd.DataFrame(rows)


def plan_section(folder, ctx, experiment) -> list[str]:
    """An experiment written by `make plan` (BUDGET=...): its plan and the race that chose it."""
    from ..budget.policy import describe
    from ..config.files import experiment_file

    path = experiment_file(ctx.root, experiment.name).with_suffix(".plan.json")
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    lines = describe(data)
    note = "<p>" + "<br>".join(escape(line) for line in lines[:2]) + f" ({escape(path.name)})</p>"
    race = data.get("race") or {}
    if not race.get("table"):
        return [html.section("Budget plan", "", note)]
    frame = race_frame(race)
    note += (f"<p>The race on fold 0: {race['seconds']:.0f}s ({race['share']:.0%} of the budget); each rung gives "
             f"every candidate the same seconds and keeps the better half; the winner's fold 0 goes on in the run.</p>")
    return [html.section("Budget plan and race", html.table(frame, "race"), note,
                         write_csv(folder, "race.csv", frame))]


def level_page(folder, ctx, title: str, preds, source: str, experiment=None) -> None:
    """The analysis of one level's OOF predictions; with the experiment, its folds and training curves first."""
    comp, y = ctx.cfg.competition, ctx.targets
    folder.mkdir()
    oof = preds.oof.astype(np.float64)
    body = [folds_section(folder, experiment, y, comp)] if experiment is not None and experiment.logs else []
    body += plan_section(folder, ctx, experiment) if experiment is not None else []
    if comp.task == "regression":  # values, not classes: residuals instead of confusion and calibration
        body += regression_sections(folder, ctx.train.ids, y, oof, comp)
        calibration_note = ""
    else:
        body += errors_sections(folder, y, oof, comp)
        calibration, ece = calibration_section(folder, y, oof, comp)
        body += [calibration, distribution_section(folder, y, preds, comp),
                 mistakes_section(folder, ctx, y, preds, comp)]
        calibration_note = f" &middot; ECE {ece:.4f}"
    cv = comp_score(comp, y, oof)
    subtitle = (f'<a href="../index.html">&larr; {escape(ctx.comp)} leaderboard</a> &middot; {escape(source)} '
                f"&middot; OOF {escape(comp.metric)} {cv:.5f}{calibration_note}")
    atomic_write_text(folder / "index.html", html.page(f"{ctx.comp} / {title}", "\n".join(body), subtitle))


def write_report(folder, ctx, disk, board) -> None:
    for exp in disk.experiments:
        level_page(folder / exp.slug, ctx, exp.label, exp.preds, str(exp.path.relative_to(ctx.root)), exp)
    for stack in disk.stacks:
        output = stack.manifest.get("output", "stack")
        level_page(folder / stack.slug, ctx, f"{output} ({stack.path.name})", stack.preds,
                   str(stack.path.relative_to(ctx.root)))
    index_page(folder, ctx, disk, board)
