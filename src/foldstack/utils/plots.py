"""PNG plots people would rather look at than CSVs. matplotlib is imported on first use (start-up time)."""
import io
from pathlib import Path

from .io import atomic_write_bytes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def plot_curves(log, metric: str, path: Path, title: str) -> None:
    """Loss curves and the validation metric per epoch, side by side."""
    fig, (ax_loss, ax_metric) = _pyplot().subplots(1, 2, figsize=(9, 3.2))
    ax_loss.plot(log["epoch"], log["train_loss"], marker="o", label="train")
    ax_loss.plot(log["epoch"], log["valid_loss"], marker="o", label="valid")
    ax_loss.set(xlabel="epoch", ylabel="loss", title=f"{title}: loss")
    ax_loss.legend()
    ax_metric.plot(log["epoch"], log[metric], marker="o", color="tab:green")
    ax_metric.set(xlabel="epoch", ylabel=metric, title=f"{title}: valid {metric}")
    _save(fig, path)


def plot_lr_find(lrs, losses, suggested, path: Path, title: str) -> None:
    """Smoothed loss against the LR (log scale), the suggestion marked."""
    fig, ax = _pyplot().subplots(figsize=(6, 3.6))
    ax.plot(lrs, losses)
    if suggested:
        ax.axvline(suggested, color="tab:red", linestyle="--", label=f"suggested {suggested:.2g}")
        ax.legend()
    ax.set(xscale="log", xlabel="learning rate", ylabel="smoothed training loss", title=title)
    if len(losses) > 1:  # the divergence at the end would flatten the part worth reading
        low, start = min(losses), losses[0]
        ax.set_ylim(low - 0.1 * (start - low + 1e-8), start + 0.5 * (start - low + 1e-8))
    _save(fig, path)


def plot_levels(report, metric: str, path: Path, title: str) -> None:
    """One bar per level (pooled OOF CV) with the spread of its per-fold scores; the output level in red."""
    fig, ax = _pyplot().subplots(figsize=(7, 0.45 * len(report) + 1.2))
    colors = ["tab:red" if o == "*" else "tab:blue" for o in report["output"]]
    ax.barh(report["level"], report["cv"], xerr=report["std"], color=colors, alpha=0.8)
    low, high = (report["cv"] - report["std"]).min(), (report["cv"] + report["std"]).max()
    pad = max(high - low, 1e-3) * 0.3
    ax.set_xlim(low - pad, high + pad)
    ax.invert_yaxis()
    ax.set(xlabel=f"OOF {metric} (bar: pooled; whisker: ± std over folds)", title=title)
    _save(fig, path)
