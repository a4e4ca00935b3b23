"""PNG plots people would rather look at than CSVs."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .io import atomic_write_bytes  # noqa: E402


def plot_curves(log, metric: str, path: Path, title: str) -> None:
    """Loss curves and the validation metric per epoch, side by side."""
    import io

    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(9, 3.2))
    ax_loss.plot(log["epoch"], log["train_loss"], marker="o", label="train")
    ax_loss.plot(log["epoch"], log["valid_loss"], marker="o", label="valid")
    ax_loss.set(xlabel="epoch", ylabel="loss", title=f"{title}: loss")
    ax_loss.legend()
    ax_metric.plot(log["epoch"], log[metric], marker="o", color="tab:green")
    ax_metric.set(xlabel="epoch", ylabel=metric, title=f"{title}: valid {metric}")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
