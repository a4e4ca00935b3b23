"""This machine's speed on the competition's own images: what the planner's arithmetic multiplies. Each candidate
(cheapest first) builds its fold as the run does (`build_fold`, with the EMA every plan keeps) on a sample of real
images and times a few batches of the run's own `train_step`, then its validation pass; decoding is timed on the
same files. A model's sizes are measured up to the first that cannot get its minimum epochs: the larger cost more."""
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from ..config.schema import Config
from ..config.training import cache_side
from ..data.images import ImageStore, resize_square
from ..engine.fold import build_fold
from ..engine.inference import predict_probs
from ..engine.runtime import decode_workers
from ..engine.step import train_step
from ..engine.training import begin_epoch
from ..utils.timing import median_seconds, synced_clock
from .planner import Candidate, Facts, Policy, Speed, affordable_epochs

log = logging.getLogger("foldstack")

SAMPLE = 48          # images decoded for the measurements
WARMUP, TIMED = 2, 3  # untimed batches (allocation, kernels chosen, workers started), then the timed ones


def decode_seconds(samples, rows, size: int, workers: int) -> tuple[float, list]:
    """(seconds per image for the cache build with `workers` decoders, the decoded images at full size) of rows
    `rows` of `samples` (data/sources.py)."""
    t0 = time.perf_counter()
    images = [samples.read(r) for r in rows]
    for img in images:
        resize_square(img, size)  # timed with the decode: the cache holds resized squares
    return (time.perf_counter() - t0) / max(len(rows), 1) / max(workers, 1), images


def sample_images(ctx) -> tuple[list, float]:
    """(SAMPLE train images decoded at full size, seconds per image of the cache build on this machine)."""
    rows = np.linspace(0, len(ctx.train) - 1, min(SAMPLE, len(ctx.train))).astype(int)
    workers = max(decode_workers(ctx.cfg), 1)
    decode_s, images = decode_seconds(ctx.train.samples, rows, ctx.cfg.data.img_size, workers)
    return images, decode_s


def sample_store(images: list, cfg: Config, n_rows: int, folder: Path) -> ImageStore:
    """n_rows of the sample images (repeated) as the run's cache holds them: S x S squares in a memory-mapped file."""
    side = cache_side(cfg.data)
    squares = [resize_square(img, side, cfg.data.interpolation) for img in images]
    np.save(folder / "sample.npy", np.stack([squares[i % len(squares)] for i in range(n_rows)]))
    return ImageStore([""] * n_rows, n_rows, folder / "sample.npy", side)


def measure(cfg: Config, c: Candidate, images: list, y: np.ndarray) -> Speed:
    """Seconds per training image (the step with its batch's augmentation) and per evaluation image (one view)
    of candidate c, from a fold of the sample built as the run builds its folds."""
    data = cfg.data.model_copy(update=dict(img_size=c.img_size, batch_size=c.batch_size))
    cfg = cfg.model_copy(update=dict(data=data, model=cfg.model.model_copy(update=dict(name=c.model)),
                                     train=cfg.train.model_copy(update=dict(ema=True))))  # the EMA every plan keeps
    n_train, n_valid = c.batch_size * (WARMUP + TIMED), c.batch_size * 2  # one validation batch
    folds = np.r_[np.ones(n_train, dtype=int), np.zeros(n_valid, dtype=int)]
    with tempfile.TemporaryDirectory() as tmp:
        store = sample_store(images, cfg, n_train + n_valid, Path(tmp))
        f = build_fold(cfg, store, np.resize(y, (n_train + n_valid, y.shape[1])), folds, 0, Path(tmp))
        begin_epoch(f, cfg, 0, 0)
        n_batches, step, times = len(f.train_loader), 0, []
        t0 = synced_clock(f.device)
        for i, (x, target) in enumerate(f.train_loader):  # the wait for a batch is part of the step
            _, step = train_step(f, cfg, 0, 0, i, n_batches, step, x, target)
            now = synced_clock(f.device)
            if i >= WARMUP:
                times.append(now - t0)
            t0 = now
        model = f.ema.module if f.ema is not None else f.model  # what validation predicts with
        eval_s = median_seconds(lambda: predict_probs([model], f.valid_loader, cfg, f.device), repeats=TIMED,
                                warmup=1, device=f.device)  # the untimed first pass: evaluation kernels chosen
        del f  # its loader's workers end with it
    return Speed(train_s=float(np.mean(times)) / c.batch_size, eval_s=eval_s / n_valid)


def measure_ladder(ctx, images: list, candidates: list, facts: Facts, budget_s: float, policy: Policy) -> dict:
    """{Candidate: Speed} of the candidates, each model up to its first size that cannot get its minimum epochs."""
    speeds, too_slow = {}, set()
    for c in candidates:
        if c.model in too_slow:
            continue  # a larger image of a model that already missed its minimum costs more still
        t0 = time.perf_counter()
        speeds[c] = speed = measure(ctx.cfg, c, images, ctx.targets)
        e = affordable_epochs(c, speed, facts, policy.folds, [], policy.fill * budget_s)
        log.info(f"plan: {c.model} at {c.img_size}px: {1 / speed.train_s:.0f} train / {1 / speed.eval_s:.0f} eval "
                 f"images/s, {e} epochs would fit ({time.perf_counter() - t0:.1f}s to measure)")
        if e < policy.epoch_range(c.pretrained, facts.n_train * (policy.folds - 1) / policy.folds)[0]:
            too_slow.add(c.model)
    return speeds
