"""The sweep's leaderboard: `make stack`'s level table (stacking.report), one row per trial with OOF predictions,
best first, with the values each trial set; a search's fold-0 table (every trial, how far it got and why it
stopped); the best N named, and the `make stack` command that blends them."""
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts import read_manifest
from ..errors import PipelineError
from ..metrics import HIGHER_IS_BETTER
from ..predictions import load_predictions
from ..stacking.report import level_report
from ..utils.io import atomic_write_csv
from .trials import format_value


def ranked(scores: dict, metric: str) -> list:
    """Names, best score first (ties: in the given order)."""
    sign = -1 if HIGHER_IS_BETTER[metric] else 1
    return sorted(scores, key=lambda name: sign * scores[name])


def oof_table(ctx, predictions: dict, values: dict) -> pd.DataFrame:
    """predictions: {trial: its prediction folder}; values: {trial: {key: value}}. make stack's table (per-fold
    scores, mean ± std, CV on the pooled OOF rows, size and speed), best CV first, the best marked `*` (output)."""
    comp, y = ctx.cfg.competition, ctx.targets
    loaded = {name: load_predictions(path, ctx.train.ids, ctx.test.ids, y.shape[1])
              for name, path in predictions.items()}
    folds = next(iter(loaded.values())).folds
    for name, p in loaded.items():
        if not np.array_equal(p.folds, folds):
            raise PipelineError(f"{predictions[name]}: trial {name} was predicted on another split than the others")
    cv = {name: read_manifest(path)["metrics"][comp.metric] for name, path in predictions.items()}
    order = ranked(cv, comp.metric)
    levels = {name: ("single model + TTA" if loaded[name].oof_plain is not None else "single model",
                     loaded[name].oof, loaded[name].test) for name in order}
    info = {name: read_manifest(predictions[name])["metrics"] for name in order}
    report = level_report(levels, y, folds, comp, order[0], info=info)
    for i, key in enumerate(dict.fromkeys(k for name in order for k in values[name])):
        report.insert(2 + i, key, [format_value(values[name].get(key, "")) for name in order])
    return report


def fold0_table(rows: list[dict], metric: str) -> pd.DataFrame:
    """rows: {trial, values, epochs, fold-0 metric, state}: a search's trials, best fold-0 metric first."""
    frame = pd.DataFrame([dict(trial=r["trial"], **{k: format_value(v) for k, v in r["values"].items()},
                               epochs="" if r["epochs"] is None else int(r["epochs"]),
                               **{f"fold0 {metric}": r["score"]}, state=r["state"])
                          for r in rows])
    return frame.sort_values(f"fold0 {metric}", ascending=not HIGHER_IS_BETTER[metric], kind="stable",
                             na_position="last")


def stack_command(comp: str, names: list[str]) -> str:
    """`make stack` on the given trials; EXP=<the best> so that make's chain (oof, train) has nothing to do."""
    return f'make stack COMP={comp} EXP={names[0]} OVERRIDES="stack.experiments=[{",".join(names)}]"'


def write(folder: Path, report: pd.DataFrame | None, fold0: pd.DataFrame | None) -> None:
    if report is not None:
        atomic_write_csv(Path(folder) / "leaderboard.csv", report)
    if fold0 is not None:
        atomic_write_csv(Path(folder) / "fold0.csv", fold0)
