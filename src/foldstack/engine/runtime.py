"""Where and how the loops run: the device, loader workers, memory layout, mixed precision and progress bars,
each resolved from the `runtime` (and `train.amp`) settings."""
import os
from contextlib import nullcontext

import torch
from tqdm import tqdm

from .. import distributed as dist
from ..config.schema import Config


def resolve_device(name: str) -> torch.device:
    return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: containers and taskset narrow it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def auto_workers(device: torch.device, processes_per_machine: int = 1) -> int:
    """runtime.num_workers=auto. GPU: the usable cores less one for the loop, shared among the machine's DDP ranks.
    CPU: none, as the model's threads use every core and a worker stalls them (on 2 cores: 0.94 of the compute
    ceiling with 0 workers, 0.87 with 1); loading from the decoded-image cache in-line is cheap."""
    if device.type != "cuda":
        return 0
    return max(1, min(16, usable_cores() // max(processes_per_machine, 1) - 1))


def num_workers(cfg: Config, device: torch.device) -> int:
    """DataLoader workers of training and inference: runtime.num_workers, or auto_workers."""
    n = cfg.runtime.num_workers
    return auto_workers(device, dist.local_world_size()) if n == "auto" else n


def decode_workers(cfg: Config) -> int:
    """Processes decoding images into the cache (and timing that, budget/speed): runtime.num_workers, or under
    `auto` every usable core (nothing else runs while the cache is built)."""
    n = cfg.runtime.num_workers
    return usable_cores() if n == "auto" else n


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
