"""The sweep's leaderboard: `make stack`'s level table (stacking.report), one row per trial with OOF predictions,
best first, with the values each trial set."""
import numpy as np
import pandas as pd

from ..artifacts import read_manifest
from ..errors import PipelineError
from ..metrics import HIGHER_IS_BETTER
from ..predictions import load_predictions
from ..stacking.report import level_report
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
    info = {name: read_manifest(path)["metrics"] for name, path in predictions.items()}
    order = ranked({name: metrics[comp.metric] for name, metrics in info.items()}, comp.metric)
    levels = {name: ("single model + TTA" if loaded[name].oof_plain is not None else "single model",
                     loaded[name].oof, loaded[name].test) for name in order}
    report = level_report(levels, y, folds, comp, order[0], info=info)
    for i, key in enumerate(dict.fromkeys(k for name in order for k in values[name])):
        report.insert(2 + i, key, [format_value(values[name].get(key, "")) for name in order])
    return report

