"""Any timm model by name; pretrained weights only from a local file (Kaggle code competitions are offline)."""
from pathlib import Path

import timm
import torch

from ..config import Model
from ..errors import PipelineError


def create_model(cfg: Model, num_classes: int) -> torch.nn.Module:
    if not timm.is_model(cfg.name):
        raise PipelineError(f"model.name: unknown timm model {cfg.name!r}")
    kwargs = dict(num_classes=num_classes, drop_rate=cfg.drop_rate)
    if not cfg.pretrained_path:
        return timm.create_model(cfg.name, pretrained=False, **kwargs)
    path = Path(cfg.pretrained_path)
    if not path.is_file():
        raise PipelineError(f"model.pretrained_path: file not found: {path}")
    # timm loads the file with weights_only=True and drops a classifier whose class count differs.
    try:
        return timm.create_model(cfg.name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), **kwargs)
    except (RuntimeError, KeyError, ValueError) as e:
        raise PipelineError(f"model.pretrained_path: {path} does not fit {cfg.name}: {str(e).splitlines()[0]}") from None


def load_weights(model: torch.nn.Module, path: Path, key: str = "model") -> torch.nn.Module:
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state[key])
    return model
