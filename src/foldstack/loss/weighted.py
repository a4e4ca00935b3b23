"""Class-weighted losses, with weights given in the config or inferred from the fold's training targets.

Weight conventions (the list in `loss.class_weights` means the same as the inferred one):
  multiclass  K weights, one per class; auto: w_c = N / (K * n_c), sklearn's compute_class_weight('balanced')
              with n_c the column sums of the (possibly soft) one-hot targets.
  binary      2 weights [negative, positive]; auto: the same 'balanced' rule over the two classes.
  multilabel  K pos_weights (weight of each label's positive term, negatives weigh 1); auto: n_neg / n_pos
              per label (timm's compute_class_weights 'neg_pos').
Counts below one sample are taken as one (as timm does), so a class missing from a fold gets a large finite weight."""
import numpy as np
import torch
import torch.nn.functional as F
from timm.loss import compute_class_weights
from torch import nn

from ..errors import PipelineError
from .common import smooth_targets

_WHAT = {"multiclass": "one per class", "binary": "[negative, positive]", "multilabel": "one pos_weight per label"}


def class_weights_from_targets(train_targets: np.ndarray, task: str) -> torch.Tensor:
    """Inverse-frequency weights (see the module docstring) from an (N, K) target matrix, float32."""
    # ClassTargets (predict.keep_top) count their rows per class without a dense copy
    y = train_targets if hasattr(train_targets, "labels") else np.asarray(train_targets, dtype=np.float64)
    n = len(y)
    if task == "multilabel":
        return compute_class_weights(y.sum(0), n, method="neg_pos")[1]
    counts = y.sum(0) if task == "multiclass" else np.array([n - y[:, 0].sum(), y[:, 0].sum()])
    return torch.tensor(n / (len(counts) * np.maximum(counts, 1.0)), dtype=torch.float32)


def check_n_weights(n_weights: int, k: int, task: str) -> None:
    expected = 2 if task == "binary" else k
    if n_weights != expected:
        raise PipelineError(f"loss.class_weights: expected {expected} weights ({_WHAT[task]}), got {n_weights}")


def resolve_class_weights(class_weights, task: str, train_targets: np.ndarray | None) -> torch.Tensor:
    if class_weights == "auto":
        if train_targets is None:
            raise PipelineError("loss.class_weights: 'auto' needs the training targets; give a list of weights instead")
        return class_weights_from_targets(train_targets, task)
    weight = torch.tensor(class_weights, dtype=torch.float32)
    if (weight < 0).any() or not weight.sum() > 0:
        raise PipelineError(f"loss.class_weights: weights must be >= 0 and not all 0, got {list(class_weights)}")
    if train_targets is not None:  # otherwise checked on the first batch
        check_n_weights(len(weight), np.shape(train_targets)[1], task)
    return weight


class WeightedCrossEntropy(nn.Module):
    """Multiclass: torch's cross_entropy(weight=w) on probability targets, i.e. the mean over samples of
    -sum_k w_k t_k log p_k. NOT normalised by the sum of sample weights (torch only does that for hard class-index
    targets), so the loss scale follows the weights."""

    def __init__(self, weight: torch.Tensor, smoothing: float = 0.0):
        super().__init__()
        self.smoothing = smoothing
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_n_weights(len(self.weight), logits.shape[1], "multiclass")
        return F.cross_entropy(logits.float(), target.float(), weight=self.weight.to(logits.device),
                               label_smoothing=self.smoothing)


class WeightedBCE(nn.Module):
    """Binary / multilabel: mean of -(w_pos t log p + w_neg (1 - t) log(1 - p)) over all labels.

    Each class's term gets its own weight, so soft targets are weighted consistently with the multiclass loss; on
    hard targets this is BCE with per-element weight t * w_pos + (1 - t) * w_neg. binary: weight = [w_neg, w_pos];
    multilabel: weight = per-label pos_weight and w_neg = 1 (torch's BCEWithLogitsLoss(pos_weight=weight))."""

    def __init__(self, weight: torch.Tensor, task: str, smoothing: float = 0.0):
        super().__init__()
        self.task, self.smoothing = task, smoothing
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_n_weights(len(self.weight), logits.shape[1], self.task)
        w = self.weight.to(logits.device)
        w_neg, w_pos = (w[0], w[1]) if self.task == "binary" else (1.0, w)
        logits, target = logits.float(), smooth_targets(target.float(), self.smoothing, self.task)
        loss = -(w_pos * target * F.logsigmoid(logits) + w_neg * (1 - target) * F.logsigmoid(-logits))
        return loss.mean()
