"""Normalisation of uint8 images where the batch is: on the device in training and inference (as timm's
PrefetchLoader does), in a loader worker before random erasing, inside the exported ONNX graph. One arithmetic
everywhere, (x - shift) * scale, bit-identical to albumentations' Normalize in float32, so a model sees the same
numbers in training, `make oof` and ONNX Runtime."""
from functools import lru_cache

import torch

from ..config.training import Data
from ..models.meta_head import split_batch


class Normalize(torch.nn.Module):
    """uint8 (N, C, H, W) or (C, H, W), 0..255 (mean/std as fractions of 255), or float in the source's own units
    (mean/std in those units) -> float32 normalised; mean/std live as buffers on the module's device (and in an
    exported graph as constants)."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("shift", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1) * 255)
        self.register_buffer("scale", 1 / (torch.tensor(std, dtype=torch.float32).view(-1, 1, 1) * 255))

    @classmethod
    def of(cls, data: Data) -> "Normalize":
        return cls(data.mean, data.std)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.uint8:
            return (images.float() - self.shift) * self.scale
        # Float sources (arrays, DICOM, table values: data/sources.py) have data.mean/std in their own units.
        return (images.float() - self.shift / 255) * (self.scale * 255)


@lru_cache(maxsize=8)
def _on_device(mean: tuple, std: tuple, device: torch.device) -> Normalize:  # built once per fold's device
    return Normalize(mean, std).to(device)


def to_device(x, device: torch.device, data: Data, channels_last: bool = False):
    """Copy (non-blocking from pinned memory), normalise uint8 with data.mean/std, optionally channels_last.
    A float batch was normalised in the worker already (random erasing needs it there). An (images, meta) batch
    (model.meta_head): the images so, the meta copied as it is."""
    images, meta = split_batch(x)
    if meta is not None:
        return to_device(images, device, data, channels_last), meta.to(device, non_blocking=True)
    x = x.to(device, non_blocking=True)
    if x.dtype == torch.uint8:
        x = _on_device(tuple(data.mean), tuple(data.std), torch.device(device))(x)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
