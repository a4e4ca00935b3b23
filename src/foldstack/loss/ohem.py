"""Online hard example mining: average the base loss over only the hardest samples of each batch."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .common import smooth_targets


def per_sample_loss(logits: torch.Tensor, target: torch.Tensor, task: str, smoothing: float) -> torch.Tensor:
    """(N,) base losses: CE for multiclass, BCE averaged over the K labels for binary / multilabel."""
    logits = logits.float()
    if task == "multiclass":
        return F.cross_entropy(logits, target.float(), label_smoothing=smoothing, reduction="none")
    target = smooth_targets(target.float(), smoothing, task)
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(1)


def n_hardest(rate: float, n: int) -> int:
    """ceil(rate * n), at least 1; rounded first so 0.7 * 10 keeps 7 samples, not 8 (float error)."""
    return max(1, math.ceil(round(rate * n, 6)))


class OHEMLoss(nn.Module):
    """Mean of the ceil(rate * N) largest per-sample losses; rate 1.0 is the plain mean loss.

    The base is CE/BCE, or any loss module with a `per_sample(logits, target)` method (focal)."""

    def __init__(self, task: str, rate: float = 0.7, smoothing: float = 0.0, base: nn.Module | None = None):
        super().__init__()
        self.task, self.rate, self.smoothing, self.base = task, rate, smoothing, base

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.base is not None:
            losses = self.base.per_sample(logits, target)
        else:
            losses = per_sample_loss(logits, target, self.task, self.smoothing)
        return losses.topk(n_hardest(self.rate, losses.numel())).values.mean()
