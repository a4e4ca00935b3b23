"""BCE with target thresholding, including "ResNet strikes back" BCE for multiclass.

Wightman, Touvron, Jegou, "ResNet strikes back", 2021, https://arxiv.org/abs/2110.00476: multiclass trained with
a BCE per class on the (mixed) one-hot targets, optionally binarised (every class present in a mixed image -> 1)."""
import torch
from timm.loss import BinaryCrossEntropy
from torch import nn

from .common import smooth_targets


class ThresholdedBCE(nn.Module):
    """Smooth targets (per the task's convention), then timm's BinaryCrossEntropy with its target_threshold (timm
    only smooths class-index targets; ours are dense). As in timm, thresholding comes after smoothing."""

    def __init__(self, task: str, smoothing: float = 0.0, target_threshold: float | None = None):
        super().__init__()
        self.task, self.smoothing = task, smoothing
        self.bce = BinaryCrossEntropy(smoothing=0.0, target_threshold=target_threshold)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.bce(logits.float(), smooth_targets(target.float(), self.smoothing, self.task))
