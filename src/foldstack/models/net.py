"""Net = timm backbone (no classifier) -> pool -> head, and freezing the backbone for head-only epochs."""
from typing import Optional

import torch
from torch import nn

from ..errors import PipelineError
from .meta_head import split_batch


class Net(nn.Module):
    """forward(x, target=None) -> logits; only margin heads use the target (training only). x: images, or
    (images, meta) with a meta branch (models/meta_head.py: its output joins the pooled features).
    State dict keys: backbone.*, pool.* (GeM's p), [meta.*], head.*. num_features: the head's input width."""
    def __init__(self, backbone: nn.Module, pool: nn.Module, head: nn.Module, num_features: int,
                 nhwc: bool = False, meta: Optional[nn.Module] = None):
        super().__init__()
        self.backbone, self.pool, self.head = backbone, pool, head
        if meta is not None:  # registered only when there is one: other models keep their state dict keys
            self.meta = meta
        self.num_features = num_features
        self.nhwc = nhwc  # some timm models (swin, mambaout) give (N, H, W, C) maps
        self.backbone_frozen = False
        self.pretrained: Optional[dict] = None  # models.pretrained.coverage of model.pretrained_path, if any
        self._trainable: set[str] = set()  # backbone parameters that required grad before freezing

    def forward(self, x, target: Optional[torch.Tensor] = None) -> torch.Tensor:
        images, meta = split_batch(x)
        f = self.backbone(images)
        if self.nhwc:
            f = f.permute(0, 3, 1, 2)
        f = self.pool(f)
        if hasattr(self, "meta"):
            if meta is None:
                raise PipelineError("internal: a model with a meta head (model.meta_head) called without its "
                                    "tabular input")
            f = torch.cat([f, self.meta(meta).to(f.dtype)], dim=1)
        return self.head(f, target)

    def train(self, mode: bool = True) -> "Net":
        super().train(mode)
        if self.backbone_frozen:  # BN running statistics of a frozen backbone must not drift
            self.backbone.eval()
        return self

    def set_backbone_trainable(self, trainable: bool) -> None:
        params = dict(self.backbone.named_parameters())
        if trainable:
            if self.backbone_frozen:  # restore, so parameters timm keeps fixed (requires_grad=False) stay fixed
                for name in self._trainable:
                    params[name].requires_grad_(True)
                self.backbone_frozen = False
                self.backbone.train(self.training)
            return
        if not self.backbone_frozen:
            self._trainable = {n for n, p in params.items() if p.requires_grad}
        for p in params.values():
            p.requires_grad_(False)
            p.grad = None  # a stale (even zero) grad would let momentum and weight decay still move it
        self.backbone_frozen = True
        self.backbone.eval()

    @property
    def pretrained_cfg(self) -> dict:  # timm.data.resolve_data_config(model=net) reads this
        return self.backbone.pretrained_cfg


def set_backbone_trainable(model: Net, trainable: bool) -> None:
    """Freeze (requires_grad off, grads dropped, backbone in eval mode, also across later model.train() calls)
    or unfreeze the backbone. Idempotent: the engine may call it every epoch."""
    model.set_backbone_trainable(trainable)
