"""Checkpoint files: written atomically, read with weights_only=True, chosen for prediction by name."""
import io
from pathlib import Path

import torch

from .errors import PipelineError
from .utils.io import atomic_write_bytes


def save_checkpoint(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def weights_for_prediction(fold_dir: Path, which) -> list[dict]:
    """The state dicts a fold predicts with, for predict.checkpoint (a name or a list of names)."""
    out = []
    for name in [which] if isinstance(which, str) else which:
        if name == "best":
            out.append(load_checkpoint(fold_dir / "best.pt")["model"])
        elif name in ("last", "ema"):
            state = load_checkpoint(fold_dir / "last.pt")
            if name == "ema" and state["ema"] is None:
                raise PipelineError(f"predict.checkpoint=ema: {fold_dir} was trained without train.ema")
            out.append(state["ema"] if state["ema"] is not None else state["model"])
        elif name == "swa":
            if not (fold_dir / "swa.pt").is_file():
                raise PipelineError(f"predict.checkpoint=swa: {fold_dir} has no SWA weights (train.swa off, or "
                                    f"training stopped before train.swa_start)")
            out.append(load_checkpoint(fold_dir / "swa.pt")["model"])
        elif name == "snapshots":
            files = sorted(fold_dir.glob("snapshot_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
            if not files:
                raise PipelineError(f"predict.checkpoint=snapshots: {fold_dir} has no snapshots (train.snapshots off)")
            out.extend(load_checkpoint(p)["model"] for p in files)
    return out
