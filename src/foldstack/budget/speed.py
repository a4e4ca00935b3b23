"""This machine's speed on the competition's own images: what the planner's arithmetic multiplies.

For each candidate (cheapest first): a few real training updates of the real model (the configured optimizer,
loss and precision, on the device the run will use) on real images, plus the training augmentation of those
images (in-line on a CPU device, spread over the loader workers on a GPU), and evaluation forwards. Decoding
speed is measured on the same files, for the cache. Measuring stops after the first candidate that cannot get
its minimum epochs: every later one costs more."""
import os
import time

import numpy as np
import torch
from timm.utils import ModelEmaV3

from ..config import Config
from ..data.device import to_device
from ..data.images import read_image, resize_square
from ..data.transforms import build_transforms
from ..engine.runtime import autocast, num_workers, resolve_device, use_channels_last
from ..loss import create_loss
from ..models import create_model
from ..optim import create_optimizer
from .planner import Candidate, Speed

SAMPLE = 48          # images decoded for the measurements
WARMUP, TIMED = 2, 3  # untimed calls (allocation, kernels chosen), then the median of the timed ones


def decode_seconds(paths: list, size: int, workers: int) -> tuple[float, list]:
    """(seconds per image for the cache build with `workers` decoders, the decoded images at full size)."""
    t0 = time.perf_counter()
    images = [read_image(p) for p in paths]
    resized = [resize_square(img, size) for img in images]
    per_image = (time.perf_counter() - t0) / max(len(paths), 1)
    del resized
    return per_image / max(workers, 1), images


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(fn, device: torch.device) -> float:
    """Median seconds of TIMED calls of fn after WARMUP untimed ones (allocation, kernel choice)."""
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(TIMED):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def measure(cfg: Config, c: Candidate, images: list, y: np.ndarray, task: str) -> Speed:
    """Seconds per training image and per evaluation image (one view) of candidate c."""
    device = resolve_device(cfg.runtime.device)
    data = cfg.data.model_copy(update=dict(img_size=c.img_size, batch_size=c.batch_size))
    cfg = cfg.model_copy(update=dict(data=data, model=cfg.model.model_copy(update=dict(name=c.model))))
    transform = build_transforms(cfg.data, train=True)
    batch = c.batch_size  # per-image cost depends on the batch (small ones are slower per image on a CPU too)
    picks = [resize_square(images[i % len(images)], c.img_size) for i in range(batch)]
    t0 = time.perf_counter()
    x = torch.stack([transform(image=img)["image"] for img in picks])
    aug_s = (time.perf_counter() - t0) / batch
    workers = num_workers(cfg, device)
    aug_s = aug_s / workers if workers else aug_s

    model = create_model(cfg.model, y.shape[1], task).to(device)
    layout = use_channels_last(cfg, device)
    x = to_device(x, device, cfg.data, layout)  # the training step's own copy and normalisation
    if layout:
        model = model.to(memory_format=torch.channels_last)
    target = torch.from_numpy(np.resize(y, (batch, y.shape[1]))).float().to(device)
    optimizer, loss_fn = create_optimizer(model, cfg.train), create_loss(cfg.loss, task, y)
    ema = ModelEmaV3(model, decay=0.99)  # every plan keeps an EMA of the weights: its update is part of a step
    model.train()

    def update():
        with autocast(cfg, device):
            loss = loss_fn(model(x, target), target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update(model)

    step_s = _median_seconds(update, device) / batch
    model.eval()
    with torch.no_grad(), autocast(cfg, device):
        eval_s = _median_seconds(lambda: model(x), device) / batch
    train_s = max(step_s, aug_s) if workers else step_s + aug_s  # workers augment while the device trains
    return Speed(train_s=train_s, eval_s=eval_s)


def sample_images(ctx) -> tuple[list, float]:
    """(SAMPLE train images decoded at full size, seconds per image of the cache build on this machine)."""
    rows = np.linspace(0, len(ctx.train.paths) - 1, min(SAMPLE, len(ctx.train.paths))).astype(int)
    workers = os.cpu_count() if ctx.cfg.runtime.num_workers == "auto" else max(ctx.cfg.runtime.num_workers, 1)
    decode_s, images = decode_seconds([ctx.train.paths[r] for r in rows], ctx.cfg.data.img_size, workers)
    return images, decode_s
