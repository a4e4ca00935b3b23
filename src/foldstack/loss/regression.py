"""Regression losses on targets scaled to [0, 1] (competition.target_range): the model's prediction is the sigmoid
of its output, as for a probability, so every loss and the stored predictions live in [0, 1]. `bce` is the
petfinder winners' trick: binary cross-entropy of the sigmoid against the scaled (soft) target."""
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import PipelineError

HUBER_DELTA = 0.1  # a tenth of the target's range: below it the loss is squared, above it linear


class SigmoidMSE(nn.Module):
    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(logits.float().sigmoid(), target.float())


class SigmoidHuber(nn.Module):
    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.huber_loss(logits.float().sigmoid(), target.float(), delta=HUBER_DELTA)


class ScaledBCE(nn.Module):
    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), target.float())


REGRESSION_LOSSES = {"auto": SigmoidMSE, "mse": SigmoidMSE, "huber": SigmoidHuber, "bce": ScaledBCE}


def regression_loss(cfg) -> nn.Module:
    """cfg: config.training.Loss. Class losses (focal, OHEM, class weights...) and label smoothing have no meaning
    for a number: one line."""
    if cfg.name not in REGRESSION_LOSSES:
        raise PipelineError(f"loss.name={cfg.name} is a classification loss; competition.task regression trains "
                            f"with {', '.join(REGRESSION_LOSSES)}")
    if cfg.label_smoothing or cfg.bce_target_threshold is not None:
        raise PipelineError("loss.label_smoothing / loss.bce_target_threshold: not for regression (the targets are "
                            "numbers); leave them unset")
    return REGRESSION_LOSSES[cfg.name]()
