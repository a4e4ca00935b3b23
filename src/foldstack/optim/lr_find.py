"""LR range test (Smith 2017, as fastai and torch-lr-finder run it): grow the LR exponentially from start_lr
to end_lr over `steps` updates, record the smoothed loss, stop once it diverges; suggest the LR where the
smoothed loss falls fastest (steepest negative slope against log LR)."""
import math

import numpy as np


def lr_at(step: int, start_lr: float, end_lr: float, steps: int) -> float:
    return start_lr * (end_lr / start_lr) ** (step / max(steps - 1, 1))


def range_test(train_step, set_lr, start_lr: float, end_lr: float, steps: int, smoothing: float = 0.05,
               diverge: float = 4.0) -> tuple[list[float], list[float]]:
    """train_step() does one update and returns its loss; set_lr(lr) sets every group's LR.
    Returns (lrs, smoothed losses) up to divergence."""
    lrs, losses, avg, best = [], [], 0.0, math.inf
    for step in range(steps):
        lr = lr_at(step, start_lr, end_lr, steps)
        set_lr(lr)
        loss = float(train_step())
        if not math.isfinite(loss):
            break
        avg = smoothing * loss + (1 - smoothing) * avg if step else loss  # exponential moving average
        lrs.append(lr)
        losses.append(avg)
        best = min(best, avg)
        if avg > diverge * best:
            break
    return lrs, losses


def suggest_lr(lrs: list[float], losses: list[float]) -> float | None:
    """The LR of the steepest descent of the smoothed loss (None when there are too few points)."""
    if len(lrs) < 5:
        return None
    slope = np.gradient(np.asarray(losses), np.log(np.asarray(lrs)))
    return float(lrs[int(np.argmin(slope))])
