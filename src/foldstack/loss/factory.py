"""The loss registry: `loss.name` x task -> an nn.Module called as loss_fn(logits, target) -> scalar.

logits and target are (N, K); targets are float and may be soft (mixup, pseudo labels). The loss applies label
smoothing (multiclass: towards uniform; else towards 0.5), so mixup must not smooth again."""
from typing import Callable

import numpy as np
import torch
from timm.loss import SoftTargetCrossEntropy
from torch import nn

from ..config.competition import TASKS
from ..config.training import LOSSES, Loss
from ..errors import PipelineError
from .bce import ThresholdedBCE
from .common import SmoothedBCE, smooth_targets
from .focal import SigmoidFocalLoss, SoftmaxFocalLoss
from .lovasz import LovaszHinge
from .ohem import OHEMLoss
from .regression import regression_loss
from .weighted import WeightedBCE, WeightedCrossEntropy, resolve_class_weights


class SmoothedSoftTargetCE(SoftTargetCrossEntropy):
    """timm's soft-target CE after label smoothing (timm leaves smoothing to Mixup)."""

    def __init__(self, smoothing: float = 0.0):
        super().__init__()
        self.smoothing = smoothing

    def forward(self, logits, target):
        return super().forward(logits.float(), smooth_targets(target.float(), self.smoothing, "multiclass"))


def _needs(cfg: Loss, task: str, tasks: tuple[str, ...], hint: str = "") -> None:
    if task not in tasks:
        raise PipelineError(f"loss.name={cfg.name} needs a {' or '.join(tasks)} task, got {task}{hint}")


def _ce(cfg, task, _):
    if task == "multiclass":
        return nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)  # accepts class-probability targets
    return SmoothedBCE(cfg.label_smoothing)


def _focal(cfg, task, _):
    if task == "multiclass":
        if cfg.focal_alpha is not None:
            raise PipelineError("loss.focal_alpha: only for binary/multilabel tasks "
                                "(multiclass class balance: loss.name=weighted_ce)")
        return SoftmaxFocalLoss(cfg.focal_gamma, cfg.label_smoothing)
    return SigmoidFocalLoss(cfg.focal_gamma, cfg.focal_alpha, cfg.label_smoothing)


def _weighted(cfg, task, train_targets):
    weight = resolve_class_weights(cfg.class_weights, task, train_targets)
    if task == "multiclass":
        return WeightedCrossEntropy(weight, cfg.label_smoothing)
    return WeightedBCE(weight, task, cfg.label_smoothing)


def _soft_ce(cfg, task, _):
    _needs(cfg, task, ("multiclass",), " (binary/multilabel: loss.name=bce)")
    return SmoothedSoftTargetCE(cfg.label_smoothing)


def _lovasz(cfg, task, _):
    _needs(cfg, task, ("binary", "multilabel"))
    return LovaszHinge()


_REGISTRY: dict[str, Callable[[Loss, str, np.ndarray | None], nn.Module]] = {
    "auto": _ce,  # CE for multiclass, BCE for binary/multilabel
    "ce": _ce,
    "focal": _focal,
    "weighted_ce": _weighted,
    "ohem": lambda cfg, task, _: OHEMLoss(task, cfg.ohem_rate, cfg.label_smoothing,
                                          base=_focal(cfg, task, _) if cfg.ohem_base == "focal" else None),
    "bce": lambda cfg, task, _: ThresholdedBCE(task, cfg.label_smoothing, cfg.bce_target_threshold),
    "soft_ce": _soft_ce,
    "lovasz": _lovasz,
    "mse": lambda cfg, task, _: _needs(cfg, task, ("regression",)),  # regression's: loss/regression.py
    "huber": lambda cfg, task, _: _needs(cfg, task, ("regression",)),
}
assert set(_REGISTRY) == set(LOSSES)


def create_loss(cfg: Loss, task: str, train_targets: np.ndarray | None = None) -> nn.Module:
    """train_targets: the (N, K) targets of the fold's training part, for loss.class_weights=auto."""
    if task not in TASKS:
        raise PipelineError(f"competition.task: unknown task {task!r}, expected one of {', '.join(TASKS)}")
    if task == "regression":
        return regression_loss(cfg)
    return _REGISTRY[cfg.name](cfg, task, train_targets)


def logits_to_probs(logits: torch.Tensor, task: str) -> torch.Tensor:
    return logits.float().softmax(1) if task == "multiclass" else logits.float().sigmoid()
