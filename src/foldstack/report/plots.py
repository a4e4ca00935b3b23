"""The report's PNGs (matplotlib, Agg, through utils/plots.py) and the thumbnails of the worst OOF mistakes."""
from pathlib import Path

import numpy as np

from ..data.sources import display_image
from ..utils.io import atomic_write_bytes
from ..utils.plots import _pyplot, _save

MAX_TICK_LABELS = 30  # more classes than this: the axes are too dense to label
MAX_BARS = 300  # more classes than this: the class distribution as lines over the classes, not bars


def fold_curves(logs: list, metric: str, path: Path, title: str) -> None:
    """Every fold on one plot per quantity: loss (train dashed, valid solid), the validation metric, and the LR
    the optimizer applied (its first parameter group's, as logged at the end of each epoch)."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_metric, ax_lr) = plt.subplots(1, 3, figsize=(13, 3.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, log in enumerate(logs):
        c = colors[k % len(colors)]
        ax_loss.plot(log["epoch"], log["train_loss"], "--", marker=".", color=c, label=f"fold {k} train")
        ax_loss.plot(log["epoch"], log["valid_loss"], "-", marker="o", color=c, label=f"fold {k} valid")
        for ax, column in ((ax_metric, metric), (ax_lr, "lr")):
            if column in log:  # (a log written under another competition.metric has that metric's column)
                ax.plot(log["epoch"], log[column], "-", marker="o", color=c, label=f"fold {k}")
    ax_loss.set(xlabel="epoch", ylabel="loss", title=f"{title}: loss")
    ax_metric.set(xlabel="epoch", ylabel=metric, title=f"valid {metric}")
    ax_lr.set(xlabel="epoch", ylabel="learning rate", title="LR applied (end of epoch)")
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    ax_loss.legend(fontsize=7, ncol=2)
    ax_metric.legend(fontsize=7)
    epochs = sorted({int(e) for log in logs for e in log["epoch"]})
    for ax in (ax_loss, ax_metric, ax_lr):
        ax.grid(alpha=0.3)
        if len(epochs) <= 12:  # one tick per epoch (a single epoch would get fractional ticks)
            ax.set_xticks(epochs)
            ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _save(fig, path)


def _heatmap(ax, matrix: np.ndarray, names: list, title: str, fmt: str) -> None:
    image = ax.imshow(matrix, cmap="Blues", vmin=0)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    k = len(names)
    if k <= MAX_TICK_LABELS:
        ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right", fontsize=8)
        ax.set_yticks(range(k), names, fontsize=8)
    if k <= 15:  # values in the cells while they fit
        top = matrix.max() if matrix.size else 0
        for i in range(k):
            for j in range(k):
                ax.text(j, i, format(matrix[i, j], fmt), ha="center", va="center", fontsize=8,
                        color="white" if top and matrix[i, j] > top / 2 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)


def confusion(counts, normalised, path: Path) -> None:
    """The OOF confusion matrix, counts and row-normalised, side by side."""
    names = [str(c) for c in counts.columns]
    side = min(5.5, 2.5 + 0.35 * len(names))
    fig, (ax_counts, ax_rows) = _pyplot().subplots(1, 2, figsize=(2 * side + 1.5, side))
    _heatmap(ax_counts, counts.to_numpy(), names, "counts", "d")
    _heatmap(ax_rows, normalised.to_numpy(), names, "row-normalised (recall on the diagonal)", ".2f")
    _save(fig, path)


def reliability(table, ece: float, path: Path, what: str) -> None:
    """Observed frequency against mean confidence per bin (the diagonal: perfect calibration), the rows per bin
    below it."""
    fig, (ax, ax_rows) = _pyplot().subplots(2, 1, figsize=(5, 5.4), sharex=True,
                                            gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], ":", color="gray", label="perfectly calibrated")
    ax.plot(table["confidence"], table["observed"], "o-", color="tab:blue", label=f"OOF (ECE {ece:.4f})")
    width = table["upper"] - table["lower"]
    ax.bar(table["lower"], table["observed"], width=width, align="edge", alpha=0.15, color="tab:blue",
           edgecolor="tab:blue")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), ylabel="observed frequency", title=f"Reliability: {what}")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    ax_rows.bar(table["lower"], table["rows"], width=width, align="edge", color="tab:gray", edgecolor="white")
    ax_rows.set(xlabel="confidence (bin of [0, 1])", ylabel="rows")
    _save(fig, path)


def class_distribution(frame, path: Path) -> None:
    """Share of each class (multilabel: of each tag's presence) in train, each validation fold and the test
    predictions, as grouped bars."""
    names = frame.iloc[:, 0].astype(str).tolist()
    columns = list(frame.columns[1:])
    counts = frame[columns].to_numpy(dtype=float)
    shares = counts / np.maximum(counts.sum(0, keepdims=True), 1)
    if len(names) > MAX_BARS:  # herbarium's 15,501 classes x 7 columns of bars: minutes and no legible picture
        # each column's shares sorted on their own (rank-frequency): the shapes compare, the CSV has each class
        fig, ax = _pyplot().subplots(figsize=(10, 3.6))
        for j, column in enumerate(columns):
            ax.plot(np.arange(1, len(names) + 1), np.sort(shares[:, j])[::-1], lw=1.6 if j == 0 else 0.8,
                    ls="--" if column == "test_predicted" else "-", label=column.replace("_", " "))
        ax.set(xscale="log", xlabel=f"class rank within each column (of {len(names):,} classes)",
               ylabel="share of rows", title="Class distribution, each column sorted: train, folds, test predictions")
        ax.set_yscale("symlog", linthresh=1e-5)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7, ncol=min(len(columns), 6), loc="upper right")
        ax.grid(alpha=0.3)
        _save(fig, path)
        return
    width = 0.8 / len(columns)
    fig, ax = _pyplot().subplots(figsize=(min(14, 3 + 0.25 * len(names) * len(columns)), 3.6))
    x = np.arange(len(names))
    for j, column in enumerate(columns):
        style = {"hatch": "//"} if column == "test_predicted" else {}
        ax.bar(x + j * width - 0.4 + width / 2, shares[:, j], width, label=column.replace("_", " "), **style)
    if len(names) <= MAX_TICK_LABELS:
        ax.set_xticks(x, names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right", fontsize=8)
    ax.set(ylabel="share of rows", title="Class distribution: train, validation folds, test predictions")
    ax.legend(fontsize=7, ncol=min(len(columns), 6))
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def thumbnail(pixels: np.ndarray, path: Path, side: int = 112) -> None:
    """A row's pixels (its samples' read(): any source) as a picture scaled so its longer side is `side`."""
    import cv2

    image = display_image(pixels)
    scale = side / max(image.shape[:2])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)
    ok, png = cv2.imencode(".png", cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"cannot encode a thumbnail for {path}")
    atomic_write_bytes(path, png.tobytes())
