"""Pieces shared by the losses: label smoothing on (N, K) float targets and the default BCE."""
import torch
from torch import nn


def smooth_targets(target: torch.Tensor, eps: float, task: str) -> torch.Tensor:
    """Label smoothing of (possibly soft) targets. multiclass: t * (1 - eps) + eps / K, as torch's
    `cross_entropy(label_smoothing=eps)` does; binary / multilabel: each label towards 0.5, t * (1 - eps) + eps / 2."""
    if not eps:
        return target
    if task == "multiclass":
        return target * (1 - eps) + eps / target.shape[1]
    return target * (1 - eps) + 0.5 * eps


class SmoothedBCE(nn.BCEWithLogitsLoss):
    """BCE with each label smoothed towards 0.5 (the `auto` loss for binary / multilabel)."""

    def __init__(self, smoothing: float = 0.0):
        super().__init__()
        self.smoothing = smoothing

    def forward(self, logits, target):
        return super().forward(logits, target * (1 - self.smoothing) + 0.5 * self.smoothing)
