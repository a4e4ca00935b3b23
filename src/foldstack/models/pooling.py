"""Global pooling over a CNN's (N, C, H, W) feature map, for model.pool other than 'avg' (which is the timm
model's own pooling and works for any architecture)."""
import torch
from torch import nn


class MaxPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(2, 3))


class DualPool(nn.Module):
    """concat(avg, max): twice the feature width."""
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


class GeM(nn.Module):
    """Generalised mean (Radenović et al.): (mean x^p)^(1/p) with p learned; p=1 is avg, large p tends to max.
    x is clamped positive (a fractional power of a negative is NaN): GeM suits ReLU-style CNNs best."""
    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.tensor([float(p)]))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p.float().clamp(min=1.0)  # p < 1 would leave the mean/max family (and p -> 0 blows up 1/p)
        # float32: x^p in fp16/bf16 under AMP under- or overflows for p well above 1
        return x.float().clamp(min=self.eps).pow(p).mean(dim=(2, 3)).pow(1.0 / p)


def create_pool(kind: str, gem_p: float = 3.0) -> nn.Module:
    return {"max": MaxPool, "dual": DualPool}[kind]() if kind != "gem" else GeM(gem_p)
