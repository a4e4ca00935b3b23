"""Backbone weights from a local file: a timm or torchvision weights file, the hub weights models.hub found in
weights/, or a checkpoint this pipeline wrote for another competition. Only the backbone is loaded; the head is
always new (new competition, other classes). Errors name the key that gave the file (`what`)."""
import logging
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..errors import PipelineError, first_line

log = logging.getLogger("foldstack")

MIN_COVERAGE = 0.9  # share of the backbone's tensors the file must provide: less means another architecture
STRIP = ("module.", "_orig_mod.")  # DataParallel/DDP, torch.compile


# What torch.load raises on a file it cannot read: a pickled full model (weights_only refuses it), a cut zip, an
# empty file, bytes that are no torch file at all.
TORCH_LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError, OSError)


def read_state_dict(path: Path, what: str = "model.pretrained_path") -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        if path.suffix == ".safetensors":
            obj = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, *TORCH_LOAD_ERRORS) as e:
        raise PipelineError(f"{what}: cannot read {path}: {first_line(e)}") from None
    # Our last.pt: {"model", "ema" (None when off), ...}, predictions use the EMA so prefer it; best.pt/swa.pt:
    # {"model"}; timm's train.py: {"state_dict"}; plain weights files are the state dict itself.
    for key in ("ema", "model", "state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)} if isinstance(obj, Mapping) else {}
    if not state:
        raise PipelineError(f"{what}: {path} holds no state dict")
    return state


def _clean(state: dict, own: dict) -> dict:
    out = {}
    for key, value in state.items():
        for prefix in STRIP:
            key = key[len(prefix):] if key.startswith(prefix) else key
        if key.startswith("backbone.") and key not in own:  # a Net of ours: backbone.* (head.*, pool.* dropped)
            key = key[len("backbone."):]
        out[key] = value
    return out


def _misfit(state: dict, own: dict) -> Optional[str]:
    """Why state cannot be the backbone's weights, or None if it fits."""
    for key, value in state.items():
        if key in own and value.shape != own[key].shape:
            return f"{key} has shape {tuple(value.shape)}, the model {tuple(own[key].shape)}"
    c = coverage(state, own, None)
    if c["missing"] > (1 - MIN_COVERAGE) * c["total"]:
        return f"only {c['loaded']} of its {c['total']} backbone tensors found, e.g. {c['first_missing'][0]} missing"
    return None


def coverage(state: dict, own: dict, path: Path | None) -> dict:
    """What a weights file gave the backbone: loaded / total tensors and the first names left random."""
    needed = [k for k in own if not k.endswith("num_batches_tracked")]  # old torchvision files lack these
    missing = [k for k in needed if k not in state]
    return dict(path=str(path), loaded=len(needed) - len(missing), total=len(needed), missing=len(missing),
                first_missing=missing[:5], unused=len([k for k in state if k not in own]))


def _converted(path: Path, name: str, in_chans: int = 3) -> dict | None:
    """The file's tensors through timm's own pretrained loading of `name` (its converter for original releases,
    e.g. ConvNeXt or Swin from their authors; its adaptation of the first convolution to `in_chans` channels),
    loaded strictly; None when they do not fit."""
    import timm

    try:
        model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)),
                                  in_chans=in_chans)
    except (RuntimeError, KeyError, ValueError):  # missing, unexpected or misshapen tensors, in the load or converter
        return None
    return model.state_dict()


def _first_conv_adapted(state: dict, own: dict, backbone: nn.Module) -> dict:
    """RGB weights for a model of other input channels (model.in_chans): the first convolution adapted as timm's
    own pretrained loading does (`adapt_input_conv`: summed for 1 channel, repeated and rescaled for more)."""
    from timm.models import adapt_input_conv

    names = backbone.pretrained_cfg.get("first_conv") or []
    for name in [names] if isinstance(names, str) else names:
        key = f"{name}.weight"
        if key in state and key in own and state[key].ndim == 4 and state[key].shape[1] != own[key].shape[1]:
            state = {**state, key: adapt_input_conv(own[key].shape[1], state[key])}
    return state


def load_backbone_weights(backbone: nn.Module, path: Path, name: str, what: str = "model.pretrained_path",
                          in_chans: int = 3) -> dict:
    """Load the backbone from `path`; returns its `coverage` (logged when partial, kept in the fold manifest).
    Refused when under MIN_COVERAGE of the tensors fit: that is another architecture, not a partial match."""
    own = backbone.state_dict()
    state = _first_conv_adapted(_clean(read_state_dict(path, what), own), own, backbone)
    problem = _misfit(state, own)
    if problem:
        converted = _converted(path, name, in_chans)
        if converted is None or _misfit(converted, own):
            raise PipelineError(f"{what}: {path} does not fit {name}: {problem}")
        state = converted
    backbone.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    report = coverage(state, own, path)
    if report["missing"]:
        log.warning(f"{what}: {report['loaded']} of {report['total']} backbone tensors loaded from "
                    f"{path}; {report['missing']} stay randomly initialised: {', '.join(report['first_missing'])}"
                    + (" ..." if report["missing"] > 5 else ""))
    return report
