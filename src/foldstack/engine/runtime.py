"""Where and how the loops run: the device, loader workers, memory layout, mixed precision and progress bars,
each resolved from the `runtime` (and `train.amp`) settings."""
from contextlib import nullcontext

import torch
from tqdm import tqdm

from .. import distributed as dist
from ..config import Config
from ..data.dataset import auto_workers


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def num_workers(cfg: Config, device: torch.device) -> int:
    n = cfg.runtime.num_workers
    return auto_workers(device, dist.local_world_size()) if n == "auto" else n


def use_channels_last(cfg: Config, device: torch.device) -> bool:
    flag = cfg.runtime.channels_last
    return device.type == "cuda" if flag == "auto" else flag


def autocast(cfg: Config, device: torch.device):
    if cfg.train.amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=getattr(torch, cfg.train.amp_dtype))
    return nullcontext()


def progress(iterable, cfg: Config, desc: str):
    """A tqdm bar on a terminal; silent in logs and CI (per-epoch log lines say enough there)."""
    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True, disable=None if cfg.runtime.progress else True)
