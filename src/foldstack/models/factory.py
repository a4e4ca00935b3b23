"""create_model: any timm backbone + our pooling and head (models.Net); backbone weights from a file: the hub
weights the config resolved to (models.hub, in weights/) or model.pretrained_path."""
from pathlib import Path

import timm
import torch
from torch import nn

from ..config.training import Model
from ..errors import PipelineError
from .heads import create_head
from .meta_head import MetaBranch
from .net import Net
from .pooling import create_pool
from .pretrained import load_backbone_weights


def create_model(cfg: Model, num_classes: int, task: str = "multiclass", weights: Path | None = None,
                 meta_inputs: int = 0) -> Net:
    """`weights`: a backbone weights file (the hub weights of Context.weights); None: cfg.pretrained_path if set,
    else random. Prediction passes none: the fold checkpoint holds every weight. `meta_inputs`: the encoded width
    of the tabular columns: with cfg.meta_head, a meta branch of that input (models/meta_head.py)."""
    if not timm.is_model(cfg.name):
        raise PipelineError(f"model.name: unknown timm model {cfg.name!r}")
    if cfg.head != "linear" and task != "multiclass":
        raise PipelineError(f"model.head={cfg.head} needs a multiclass task (one class per image); this one is "
                            f"{task}: use model.head=linear")
    if weights is not None:
        source, what = Path(weights), "model.pretrained"
    else:
        source, what = (Path(cfg.pretrained_path) if cfg.pretrained_path else None), "model.pretrained_path"
    if source is not None and not source.is_file():
        raise PipelineError(f"{what}: file not found: {source}")
    backbone = _backbone(cfg)
    loaded = load_backbone_weights(backbone, source, cfg.name, what, cfg.in_chans) if source is not None else None
    if cfg.pool == "avg":  # the model's own pooling: any architecture, ViTs included
        pool, nhwc = nn.Identity(), False
        width = getattr(backbone, "head_hidden_size", None) or backbone.num_features
    else:
        pool, (width, nhwc) = create_pool(cfg.pool, cfg.gem_p), _feature_map(backbone, cfg)
        width *= 2 if cfg.pool == "dual" else 1
    meta = MetaBranch(meta_inputs, cfg.meta_head) if cfg.meta_head and meta_inputs else None
    width += cfg.meta_head if meta is not None else 0
    head = create_head(cfg.head, width, num_classes, cfg.drop_rate, cfg.margin_s, cfg.margin_m)
    net = Net(backbone, pool, head, width, nhwc, meta)
    net.pretrained = loaded  # what the weights file covered: recorded in each fold's manifest
    return net


def _backbone(cfg: Model) -> nn.Module:
    # num_classes=0: no classifier (the head is ours). global_pool='': the model returns its unpooled map after
    # any post-feature layers (MobileNetV3's conv_head, ConvNeXt's head norm), which forward_features skips.
    kwargs = dict(num_classes=0, in_chans=cfg.in_chans)
    if cfg.pool != "avg":
        kwargs["global_pool"] = ""
    if cfg.drop_path_rate:
        kwargs["drop_path_rate"] = cfg.drop_path_rate
    try:
        return timm.create_model(cfg.name, pretrained=False, **kwargs)
    except TypeError as e:
        if "drop_path_rate" in str(e):
            raise PipelineError(f"model.drop_path_rate: {cfg.name} has no stochastic depth; set it to 0") from None
        raise
    except AssertionError as e:  # e.g. models that cannot drop their pooling
        raise PipelineError(f"model.pool={cfg.pool} needs a CNN with a 2-D feature map; {cfg.name}: {e}") from None


@torch.no_grad()
def _feature_map(backbone: nn.Module, cfg: Model) -> tuple[int, bool]:
    """(channels, NHWC?) of the unpooled output, from one forward of zeros (eval: BN statistics untouched) at the
    model's own input size (timm's pretrained cfg): every model takes it, fixed-size ones (ViT, Swin) only it."""
    was_training = backbone.training
    backbone.eval()
    size = backbone.pretrained_cfg.get("input_size", (3, 224, 224))[1:]
    out = backbone(torch.zeros(1, cfg.in_chans, *size))
    backbone.train(was_training)
    if out.ndim != 4:
        raise PipelineError(f"model.pool={cfg.pool} needs a CNN with a 2-D feature map; {cfg.name} gives shape "
                            f"{tuple(out.shape)} (use model.pool=avg)")
    width = getattr(backbone, "head_hidden_size", None) or backbone.num_features
    nhwc = out.shape[1] != width and out.shape[-1] == width
    return int(out.shape[-1] if nhwc else out.shape[1]), nhwc

