"""Data-parallel training of one fold under torchrun (`make train FOLD=0 GPUS=4`), one process per device; without
torchrun's RANK / WORLD_SIZE everything here is a no-op. Every rank draws the same global batch and trains on its
slice (DDP averages the gradients: the single-process step on the whole batch). Rank 0 alone writes files."""
import os

import numpy as np
import torch
import torch.distributed as dist

from .errors import PipelineError
from .wide import TopProbs


def rank() -> int:
    return int(os.environ.get("RANK", 0))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", 1))


def local_world_size() -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", 1))


def is_main() -> bool:
    return rank() == 0


def active() -> bool:
    return world_size() > 1


def setup(device: torch.device, batch_size: int) -> torch.device:
    """Join the process group (NCCL on GPUs, gloo on CPU) and return this rank's device."""
    if not active():
        return device
    if batch_size % world_size():
        raise PipelineError(f"data.batch_size={batch_size} must be a multiple of the {world_size()} processes "
                            f"(each trains on an equal slice of every batch)")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def wrap(model: torch.nn.Module, device: torch.device, find_unused: bool = False) -> torch.nn.Module:
    """DDP around the model (BatchNorm synchronised across GPUs); the model itself when not distributed."""
    if not active():
        return model
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    # find_unused: a frozen backbone (train.freeze_epochs) gets no gradients for a while
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)


def barrier() -> None:
    if active():
        dist.barrier()


def max_over_ranks(value: float, device: torch.device) -> float:
    """The largest of every rank's value (a number all ranks must agree on, e.g. the seconds trained)."""
    if not active():
        return value
    tensor = torch.tensor([float(value)], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor.item())


def shard(rows: np.ndarray) -> np.ndarray:
    """This rank's share of rows to predict: every world_size-th one."""
    return rows[rank()::world_size()] if active() else rows


def gather_shards(part, n: int):
    """Reassemble every rank's `shard` predictions into the (n, ...) array of all rows."""
    if not active():
        return part
    parts = [None] * world_size()
    dist.all_gather_object(parts, part)
    if isinstance(part, TopProbs):  # predict.keep_top: each rank's best classes, interleaved the same way
        out = TopProbs.empty(n, part.top, part.n_classes)
        for r, p in enumerate(parts):
            out[r::world_size()] = p
        return out
    out = np.empty((n,) + part.shape[1:], dtype=part.dtype)
    for r, p in enumerate(parts):
        out[r::world_size()] = p
    return out


def cleanup() -> None:
    if active() and dist.is_initialized():
        dist.destroy_process_group()
