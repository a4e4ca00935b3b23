"""Optimizers through timm's registry, on parameter groups that are ours: backbone vs head learning rates,
layer-wise decay inside the backbone (timm), no weight decay on norms and biases."""
import torch
from timm.optim import create_optimizer_v2, list_optimizers, param_groups_layer_decay, param_groups_weight_decay

from ..config.training import Train
from ..errors import PipelineError


def _scaled(groups: list[dict], scale: float) -> list[dict]:
    # timm's schedulers multiply a group's LR by its `lr_scale`; our Schedule does the same for OneCycle and SWA.
    return [{**g, "lr_scale": g.get("lr_scale", 1.0) * scale} for g in groups if g["params"]]


def param_groups(model: torch.nn.Module, tc: Train) -> list[dict]:
    """Groups for a models.Net: the backbone (layer-wise scales when train.layer_decay), then the pool + head
    at train.head_lr_mult. 1-d parameters (norm weights, biases) get no weight decay when no_wd_norm_bias."""
    if tc.layer_decay:
        groups = param_groups_layer_decay(model.backbone, tc.weight_decay, layer_decay=tc.layer_decay,
                                          weight_decay_exclude_1d=tc.no_wd_norm_bias)
    else:
        groups = param_groups_weight_decay(model.backbone, tc.weight_decay, weight_decay_exclude_1d=tc.no_wd_norm_bias)
    head = torch.nn.ModuleDict({name: module for name, module in model.named_children() if name != "backbone"})
    head_groups = param_groups_weight_decay(head, tc.weight_decay, weight_decay_exclude_1d=tc.no_wd_norm_bias)
    return _scaled(groups, 1.0) + _scaled(head_groups, tc.head_lr_mult)


def create_optimizer(model: torch.nn.Module, tc: Train) -> torch.optim.Optimizer:
    name = tc.optimizer.lower()
    base = name.split("_", 1)[-1] if name.startswith("lookahead_") else name
    if base not in list_optimizers():
        raise PipelineError(f"train.optimizer: unknown timm optimizer {tc.optimizer!r} "
                            f"(e.g. sgd, momentum, adam, adamw, radam, lamb, novograd, lookahead_adamw)")
    return create_optimizer_v2(param_groups(model, tc), opt=name, lr=tc.lr, weight_decay=tc.weight_decay,
                               momentum=tc.momentum)
