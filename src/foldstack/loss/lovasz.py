"""Lovasz hinge: a convex surrogate of the Jaccard (IoU) loss on binary labels.

Berman, Rannen Triki, Blaschko, "The Lovasz-Softmax loss: A tractable surrogate for the optimization of the
intersection-over-union measure in neural networks", CVPR 2018, https://arxiv.org/abs/1705.08790
(after the authors' reference code, lovasz_hinge_flat)."""
import torch
import torch.nn.functional as F
from torch import nn


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss w.r.t. errors sorted in descending order."""
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)  # >= 1 from the first element on, never 0
    jaccard = 1 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


class LovaszHinge(nn.Module):
    """Binary / multilabel: one Jaccard surrogate over all N * K labels of the batch, flattened. Targets are
    binarised at 0.5 (> 0.5 is positive), so label smoothing has no effect and a 50/50 mixed label counts as
    negative. Logits are margins: a label is error-free once logit * sign >= 1."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float().flatten()
        labels = (target.flatten() > 0.5).float()
        errors = 1 - logits * (2 * labels - 1)  # hinge errors; signs are +1 / -1
        errors_sorted, perm = torch.sort(errors, descending=True)
        return torch.dot(F.relu(errors_sorted), lovasz_grad(labels[perm]))
