"""Focal loss (Lin et al. 2017, https://arxiv.org/abs/1708.02002) on soft targets. With gamma = 0 (and no alpha)
both reduce exactly to CE / BCE, so focal is a drop-in that only re-weights."""
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import sigmoid_focal_loss

from .common import smooth_targets


class SoftmaxFocalLoss(nn.Module):
    """Multiclass: mean over samples of -sum_k t_k (1 - p_k)^gamma log p_k (soft targets t).

    No alpha here: per-class balancing for multiclass is `weighted_ce`'s job."""

    def __init__(self, gamma: float = 2.0, smoothing: float = 0.0):
        super().__init__()
        self.gamma, self.smoothing = gamma, smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.per_sample(logits, target).mean()

    def per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=1)  # fp32 even under autocast
        target = smooth_targets(target.float(), self.smoothing, "multiclass")
        loss = -target * logp
        if self.gamma:  # skipped at 0: pow's gradient at (1 - p) = 0 would be 0 * inf
            # clamp keeps the gradient finite for gamma < 1 when a probability rounds to exactly 1
            loss = loss * (1 - logp.exp()).clamp(min=1e-12) ** self.gamma
        return loss.sum(1)


class SigmoidFocalLoss(nn.Module):
    """Binary / multilabel: torchvision's sigmoid focal loss, mean over all N * K labels. alpha (weight of the
    positives) None: no alpha weighting (torchvision's alpha = -1)."""

    def __init__(self, gamma: float = 2.0, alpha: float | None = None, smoothing: float = 0.0):
        super().__init__()
        self.gamma, self.alpha, self.smoothing = gamma, -1.0 if alpha is None else alpha, smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.per_sample(logits, target).mean()

    def per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(N,) losses: the mean over each sample's K labels."""
        target = smooth_targets(target.float(), self.smoothing, "binary")
        return sigmoid_focal_loss(logits.float(), target, alpha=self.alpha, gamma=self.gamma, reduction="none").mean(1)
