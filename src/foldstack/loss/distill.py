"""Knowledge distillation (Hinton et al., 2015) on targets that carry both label sets: (N, 2K) = [hard, teacher].

The teacher part holds the teacher's probabilities (stored predictions, not logits), softened here with the
same temperature as the student: softmax(log p / T) for multiclass, sigmoid(logit(p) / T) per output for
binary/multilabel; the T^2 factor keeps the soft term's gradient scale independent of T."""
import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-6


def soften(p: torch.Tensor, temperature: float, task: str) -> torch.Tensor:
    """Teacher probabilities at temperature T (T = 1: unchanged)."""
    p = p.float().clamp(EPS, 1 - EPS)
    if task == "multiclass":
        return (p.log() / temperature).softmax(1)
    return torch.sigmoid(torch.logit(p) / temperature)


class DistillLoss(nn.Module):
    def __init__(self, base: nn.Module, alpha: float, temperature: float, task: str):
        super().__init__()
        self.base, self.alpha, self.temperature, self.task = base, alpha, temperature, task

    def soft_term(self, logits: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        t, z = self.temperature, logits.float() / self.temperature
        target = soften(teacher, t, self.task)
        if self.task == "multiclass":
            loss = -(target * z.log_softmax(1)).sum(1).mean()
        else:
            loss = F.binary_cross_entropy_with_logits(z, target)
        return loss * t * t

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        k = logits.shape[1]
        hard, teacher = target[:, :k], target[:, k:]
        if self.alpha == 0:
            return self.base(logits, hard)
        if self.alpha == 1:
            return self.soft_term(logits, teacher)
        return (1 - self.alpha) * self.base(logits, hard) + self.alpha * self.soft_term(logits, teacher)
