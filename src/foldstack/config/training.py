"""What a fold trains: model, data and augmentation, mixup, optimisation and schedule, loss, LR range test."""
from typing import Literal, Optional, Union

from pydantic import Field

from .base import Section


POOLS = ("avg", "max", "dual", "gem")
HEADS = ("linear", "arcface", "cosface")


class Model(Section):
    name: str = "resnet18"              # any timm model name
    pretrained_path: Optional[str] = None  # local weights: timm/torchvision file or a checkpoint this pipeline wrote
    drop_rate: float = Field(0.0, ge=0, lt=1)       # dropout before the classifier
    drop_path_rate: float = Field(0.0, ge=0, lt=1)  # stochastic depth (timm models that support it)
    pool: Literal[POOLS] = "avg"        # avg: the model's own pooling; max/dual(concat avg+max)/gem need a CNN
    gem_p: float = Field(3.0, ge=1)     # GeM initial exponent (learned)
    head: Literal[HEADS] = "linear"     # arcface/cosface: margin heads, plain scaled-cosine logits at prediction
    margin_s: float = Field(30.0, gt=0)  # margin heads: logit scale
    margin_m: float = Field(0.5, ge=0)   # margin heads: additive angular (arcface) or cosine (cosface) margin


AUGMENT_PRESETS = ("none", "light", "medium", "heavy")


class Data(Section):
    img_size: int = Field(64, ge=8)
    batch_size: int = Field(64, ge=1)
    hflip: bool = True
    vflip: bool = False
    augment: Literal[AUGMENT_PRESETS] = "light"  # albumentations preset (light: small shift/scale/rotate)
    extra_augs: list[dict] = []         # free list: [{name: CLAHE, p: 0.3}, ...], any albumentations transform
    auto_augment: Optional[str] = None  # timm RandAugment string ('rand-m9-mstd0.5-inc1') or 'trivial'
    random_erasing: float = Field(0.0, ge=0, le=1)  # timm RandomErasing probability (per image)
    multiscale: list[int] = []          # train each batch at a size drawn from this list (validation: img_size)
    mean: list[float] = [0.485, 0.456, 0.406]
    std: list[float] = [0.229, 0.224, 0.225]


class Mixup(Section):
    """timm's Mixup/CutMix on the (N, K) float targets; off when both alphas are 0."""
    mixup_alpha: float = Field(0.0, ge=0)
    cutmix_alpha: float = Field(0.0, ge=0)
    prob: float = Field(1.0, ge=0, le=1)          # chance a batch is mixed
    switch_prob: float = Field(0.5, ge=0, le=1)   # chance of cutmix instead of mixup when both are on
    mode: Literal["batch", "pair", "elem"] = "batch"
    off_epoch: Optional[int] = Field(None, ge=0)  # no mixing from this epoch (0-based) on


SCHEDULERS = ("cosine", "tanh", "step", "multistep", "exponential", "plateau", "poly", "constant", "onecycle",
              "none")


class Train(Section):
    epochs: int = Field(10, ge=1)
    optimizer: str = "adamw"            # any timm optimizer: sgd (nesterov), adam, adamw, radam, lamb, novograd,
    lr: float = Field(1e-3, gt=0)       # lookahead_<name>, ...
    weight_decay: float = Field(0.01, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    no_wd_norm_bias: bool = True        # no weight decay on norm layers and biases (1-d parameters)
    layer_decay: Optional[float] = Field(None, gt=0, le=1)  # layer-wise LR decay towards the stem (timm)
    head_lr_mult: float = Field(1.0, gt=0)  # head LR = lr * this (backbone vs head)
    freeze_epochs: int = Field(0, ge=0)  # train only the head for the first N epochs (backbone frozen, BN eval)
    scheduler: Literal[SCHEDULERS] = "cosine"  # stepped per update, except plateau (per epoch)
    warmup_epochs: int = Field(1, ge=0)
    warmup_lr: float = Field(1e-5, ge=0)
    min_lr: float = Field(1e-6, ge=0)
    decay_epochs: float = Field(2, gt=0)      # step / exponential: decay every this many epochs
    decay_milestones: list[int] = [5, 8]      # multistep: epochs at which to decay
    decay_rate: float = Field(0.1, gt=0)      # step / multistep / plateau factor; exponential: factor per epoch
    patience_epochs: int = Field(2, ge=0)     # plateau
    cycles: int = Field(1, ge=1)        # cosine with restarts: this many equal cycles over the epochs
    cycle_decay: float = Field(1.0, gt=0)  # peak LR factor from one cycle to the next
    snapshots: bool = False             # save a snapshot at each cycle's end (predict.checkpoint=snapshots)
    onecycle_pct_start: float = Field(0.3, gt=0, lt=1)
    ema: bool = False
    ema_decay: float = Field(0.999, gt=0, lt=1)
    swa: bool = False                   # stochastic weight averaging (torch.optim.swa_utils)
    swa_start: float = Field(0.75, ge=0)  # first averaged epoch: 0-based index, or a fraction of epochs if < 1
    swa_lr: float = Field(1e-4, gt=0)
    swa_anneal_epochs: int = Field(1, ge=0)
    accum_steps: int = Field(1, ge=1)   # gradient accumulation: optimizer step every N batches
    grad_clip: Optional[float] = Field(None, gt=0)
    early_stopping: Optional[int] = Field(None, ge=1)  # stop after N epochs without a better valid metric
    amp: bool = True                    # torch.amp autocast on CUDA only
    amp_dtype: Literal["float16", "bfloat16"] = "bfloat16"
    seed: int = 42


LOSSES = ("auto", "ce", "focal", "weighted_ce", "ohem", "bce", "soft_ce", "lovasz")


class Loss(Section):
    name: Literal[LOSSES] = "auto"      # auto: cross-entropy (multiclass) or BCE (binary/multilabel)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    focal_gamma: float = Field(2.0, ge=0)
    focal_alpha: Optional[float] = Field(None, ge=0, le=1)  # binary/multilabel: weight of positives
    class_weights: Union[Literal["auto"], list[float]] = "auto"  # weighted_ce; auto: inverse class frequency
    ohem_rate: float = Field(0.7, gt=0, le=1)  # ohem: mean over this fraction of hardest samples
    ohem_base: Literal["ce", "focal"] = "ce"  # ohem: the per-sample loss it mines (focal: focal_gamma/alpha)
    bce_target_threshold: Optional[float] = Field(None, ge=0, lt=1)  # bce: binarise soft targets above this


class LrFind(Section):
    """`make lr-find`: an LR range test on fold 0 (exponentially growing LR, smoothed loss)."""
    start_lr: float = Field(1e-7, gt=0)
    end_lr: float = Field(10.0, gt=0)
    steps: int = Field(100, ge=5)
    smoothing: float = Field(0.05, ge=0, lt=1)
    diverge: float = Field(4.0, gt=1)   # stop once the smoothed loss exceeds this many times its minimum
