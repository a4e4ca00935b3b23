"""Multiscale training: each batch resized to a size drawn from `data.multiscale` (validation stays at img_size)."""
import numpy as np
import torch
import torch.nn.functional as F


def multiscale_size(sizes: list[int], seed: int, epoch: int, step: int) -> int:
    """The training size of one batch: a pure function of (sizes, seed, epoch, step), on its own generator."""
    if not sizes:
        raise ValueError("multiscale_size needs a non-empty list of sizes")
    rng = np.random.default_rng([seed % 2**64, epoch % 2**64, step % 2**64])
    return int(sizes[int(rng.integers(len(sizes)))])


def resize_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, size, size), bilinear without antialiasing; `x` itself when already that size."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
