"""The report's analysis of a regression level: predicted against true and the residuals (a PNG), their quantiles,
and the rows with the largest errors, all in the target's own units (competition.target_range undone)."""
import numpy as np
import pandas as pd

from ..regression import unscale
from ..utils.io import atomic_write_csv
from ..utils.plots import _pyplot, _save
from . import html


def scatter(true: np.ndarray, predicted: np.ndarray, names: list[str], path) -> None:
    """Per target: predicted against true (the diagonal is a perfect model) and the residuals' histogram."""
    fig, axes = _pyplot().subplots(len(names), 2, figsize=(9, 3.6 * len(names)), squeeze=False)
    for k, name in enumerate(names):
        t, p = true[:, k], predicted[:, k]
        low, high = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
        axes[k, 0].scatter(t, p, s=6, alpha=0.5)
        axes[k, 0].plot([low, high], [low, high], color="grey", lw=1)
        axes[k, 0].set(xlabel=f"true {name}", ylabel=f"OOF predicted {name}", title="Predicted against true")
        axes[k, 1].hist(p - t, bins=40)
        axes[k, 1].set(xlabel="predicted - true", ylabel="rows", title="Residuals")
    _save(fig, path)


def regression_sections(folder, ids, y: np.ndarray, oof: np.ndarray, comp, n: int = 24) -> list[str]:
    true, predicted = unscale(y, comp.target_range), unscale(oof, comp.target_range)
    names = list(comp.target_cols)
    scatter(true, predicted, names, folder / "residuals.png")
    residual = predicted - true
    quantiles = pd.DataFrame({"target": names, **{f"q{q:g}": np.quantile(residual, q / 100, axis=0)
                                                  for q in (5, 25, 50, 75, 95)},
                              "mean": residual.mean(0), "rmse": np.sqrt((residual ** 2).mean(0))})
    worst = np.argsort(-np.abs(residual).max(1))[:n]
    rows = pd.DataFrame({"id": [ids[i] for i in worst], **{f"true {c}": true[worst, k] for k, c in enumerate(names)},
                         **{f"predicted {c}": predicted[worst, k] for k, c in enumerate(names)}})
    atomic_write_csv(folder / "residuals.csv", quantiles)
    atomic_write_csv(folder / "largest_errors.csv", rows)
    return [html.section("Predicted against true", html.figure("residuals.png", "OOF predictions, every train row "
                                                                              "once") + html.table(quantiles, "residuals"),
                         "Residuals (predicted - true) in the target's units.", "residuals.csv"),
            html.section("Largest errors", html.table(rows, "largest_errors"), "", "largest_errors.csv")]
