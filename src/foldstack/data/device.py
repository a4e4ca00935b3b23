"""A batch onto the device: uint8 images are normalised there, in the layout the model runs fastest in."""
from functools import lru_cache

import torch

from ..config import Data


@lru_cache(maxsize=8)
def _scale_shift(mean: tuple, std: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # albumentations' Normalize: (x - 255 mean) / (255 std)
    shift = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1) * 255
    scale = 1 / (torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1) * 255)
    return shift, scale


def to_device(x: torch.Tensor, device: torch.device, data: Data, channels_last: bool = False) -> torch.Tensor:
    """Copy (non-blocking from pinned memory), normalise uint8 with data.mean/std, optionally channels_last."""
    x = x.to(device, non_blocking=True)
    if x.dtype == torch.uint8:
        shift, scale = _scale_shift(tuple(data.mean), tuple(data.std), torch.device(device))
        x = (x.float() - shift) * scale
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
