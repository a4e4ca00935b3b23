"""Losses on (N, K) float targets (hard or soft). New losses (focal, OHEM, weighted) register here."""
import torch
from torch import nn

from ..config import Loss


class SmoothedBCE(nn.BCEWithLogitsLoss):
    def __init__(self, smoothing: float = 0.0):
        super().__init__()
        self.smoothing = smoothing

    def forward(self, logits, target):
        return super().forward(logits, target * (1 - self.smoothing) + 0.5 * self.smoothing)


def create_loss(cfg: Loss, task: str) -> nn.Module:
    if task == "multiclass":
        return nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)  # accepts class-probability targets
    return SmoothedBCE(cfg.label_smoothing)


def logits_to_probs(logits: torch.Tensor, task: str) -> torch.Tensor:
    return logits.float().softmax(1) if task == "multiclass" else logits.float().sigmoid()
