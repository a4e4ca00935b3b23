"""Classifier heads. Each takes (features, target=None) so Net can hand the target to margin heads in training."""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class LinearHead(nn.Module):
    def __init__(self, width: int, num_classes: int, drop_rate: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, f: torch.Tensor, target: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.fc(self.drop(f))


class MarginHead(nn.Module):
    """ArcFace / CosFace: logits are s * cos(feature, class weight). In training with a target the target class
    is penalised: cosface s*(cos - m*t), arcface s*cos(theta + m*t) (soft t: the margin interpolated). At
    prediction (eval, or no target) the logits are the plain s*cos, as with a linear head."""
    def __init__(self, width: int, num_classes: int, kind: str, s: float = 30.0, m: float = 0.5,
                 drop_rate: float = 0.0, eps: float = 1e-6):
        super().__init__()
        assert kind in ("arcface", "cosface"), kind
        self.kind, self.s, self.m, self.eps = kind, s, m, eps
        self.drop = nn.Dropout(drop_rate)
        self.weight = nn.Parameter(torch.empty(num_classes, width))
        nn.init.xavier_uniform_(self.weight)

    def cosine(self, f: torch.Tensor) -> torch.Tensor:
        # float32 outside autocast: acos near |cos|=1 and the scale s are too coarse in fp16/bf16
        with torch.autocast(f.device.type, enabled=False):
            return F.normalize(f.float(), dim=1) @ F.normalize(self.weight.float(), dim=1).T

    def forward(self, f: torch.Tensor, target: Optional[torch.Tensor] = None) -> torch.Tensor:
        cos = self.cosine(self.drop(f))
        if not self.training or target is None or self.m == 0:
            return self.s * cos
        t = F.one_hot(target, cos.shape[1]) if target.dtype == torch.long else target
        margin = self.m * t.to(cos.dtype)
        if self.kind == "cosface":
            return self.s * (cos - margin)
        theta = torch.acos(cos.clamp(-1 + self.eps, 1 - self.eps))
        # cos(theta + m) stops decreasing past pi; there, like insightface, fall back to cos - m*sin(m)
        penalised = torch.where(theta + margin <= math.pi, torch.cos(theta + margin), cos - margin * torch.sin(margin))
        return self.s * torch.where(margin > 0, penalised, cos)  # non-target classes: exactly the eval logits


def create_head(kind: str, width: int, num_classes: int, drop_rate: float = 0.0, s: float = 30.0,
                m: float = 0.5) -> nn.Module:
    if kind == "linear":
        return LinearHead(width, num_classes, drop_rate)
    return MarginHead(width, num_classes, kind, s, m, drop_rate)
