"""The level table: every level's CV per fold, mean ± std and on the pooled OOF rows."""
import numpy as np
import pandas as pd

from ..metrics import comp_score, fold_scores
from .thresholds import tuned_cv


def level_report(levels: dict, y: np.ndarray, folds: np.ndarray, comp, output: str,
                 thresholds: np.ndarray | None = None, info: dict | None = None) -> pd.DataFrame:
    """levels: {name: (kind, oof, test)}. One row per level; `output` is the level make stack writes out.
    info: {name: a prediction manifest's metrics}: single models get their size and inference speed.
    With searched thresholds the output row also gets its CV at them (thresholds.tuned_cv): multilabel's are
    optimistic, fitted on the same OOF rows; ordinal cuts are refitted fold by fold, honest."""
    rows = []
    for name, (kind, oof, _) in levels.items():
        per_fold = fold_scores(comp, y, oof, folds)
        row = dict(level=name, kind=kind, **{f"fold_{k}": s for k, s in enumerate(per_fold)},
                   mean=float(np.mean(per_fold)), std=float(np.std(per_fold)), cv=comp_score(comp, y, oof),
                   output="*" if name == output else "")
        if info:
            metrics = info.get(name, {})
            row["params_M"] = metrics["params"] / 1e6 if "params" in metrics else np.nan
            row["images_per_s"] = metrics.get("images_per_s", np.nan)
        if thresholds is not None:
            row["cv_tuned_thresholds"] = tuned_cv(comp, y, oof, folds, thresholds) if name == output else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def format_report(report: pd.DataFrame, metric: str) -> str:
    shown = report.copy()
    shown.insert(2, f"{metric} (mean ± std)", [f"{m:.5f} ± {s:.5f}" for m, s in zip(report["mean"], report["std"])])
    shown = shown.drop(columns=["mean", "std"])
    for column, fmt in (("params_M", "{:.2f}"), ("images_per_s", "{:.0f}")):
        if column in shown:
            shown[column] = [fmt.format(v) if v == v else "" for v in shown[column]]
    return shown.to_string(index=False, float_format=lambda v: f"{v:.5f}")
