"""What a fold trains: model, data and augmentation, mixup, optimisation and schedule, loss, LR range test."""
from typing import Literal, Optional, Union

from pydantic import Field, model_serializer

from .base import Section


POOLS = ("avg", "max", "dual", "gem")
HEADS = ("linear", "arcface", "cosface")


class Model(Section):
    """The network: a timm backbone, its pooling and the classification head."""
    name: str = "resnet18"
    """Any timm model name, optionally with its pretrained tag (`resnet18.a1_in1k`)."""
    pretrained: Union[bool, Literal["auto"]] = "auto"
    """ImageNet weights through timm and the Hugging Face hub, cached in `weights/` (`make weights`): `auto` uses
    them when they are in `weights/` (or, when training, can be downloaded) and trains from scratch otherwise,
    saying so; `true` requires them (a one-line error otherwise); `false`: from scratch. The hash of the file
    loaded is part of the models' key. With weights, the model's data config (input size, mean/std,
    interpolation, crop) is the default of the `data` keys the config leaves unset."""
    in_chans: int = Field(3, ge=1)
    """Input channels of the network (timm's `in_chans`; pretrained weights get their first convolution adapted
    by timm). 3 for RGB files; discovery sets the source's count for other inputs (`competition.image_source`)."""
    pretrained_path: Optional[str] = None
    """Local backbone weights: a timm/torchvision file (.pth/.bin/.safetensors) or a checkpoint this pipeline
    wrote; the head is re-initialised."""
    drop_rate: float = Field(0.0, ge=0, lt=1)
    """Dropout before the classifier."""
    drop_path_rate: float = Field(0.0, ge=0, lt=1)
    """Stochastic depth (timm models that support it)."""
    pool: Literal[POOLS] = "avg"
    """`avg`: the model's own pooling; `max`, `dual` (concatenated avg+max, width x2), `gem` (learned exponent)
    need a CNN."""
    gem_p: float = Field(3.0, ge=1)
    """GeM pooling: initial exponent (learned)."""
    head: Literal[HEADS] = "linear"
    """`linear`, or the margin heads `arcface` / `cosface` (plain scaled-cosine logits at prediction)."""
    margin_s: float = Field(30.0, gt=0)
    """Margin heads: logit scale."""
    margin_m: float = Field(0.5, ge=0)
    """Margin heads: additive angular (arcface) or cosine (cosface) margin."""
    meta_head: int = Field(0, ge=0, strict=True)
    """Hidden width (e.g. 32) of an MLP branch on the encoded competition.tabular_cols, concatenated to the pooled
    image features before the head (docs/competitions.md); 0: off."""

    @model_serializer(mode="wrap")
    def _dump(self, handler):  # RGB runs without a meta head keep the keys they had before these keys existed
        return {k: v for k, v in handler(self).items() if (k, v) not in (("in_chans", 3), ("meta_head", 0))}


AUGMENT_PRESETS = ("none", "light", "medium", "heavy")
INTERPOLATIONS = ("area", "bilinear", "bicubic")


class Data(Section):
    """Image size, batches, normalisation and training augmentation."""
    img_size: int = Field(64, ge=8)
    """Side of the square images the model sees (training, validation, test); with pretrained weights the model's
    own input size unless set."""
    cache_size: Optional[Union[int, float]] = None
    """Side of the squares the decoded-image cache keeps: a number of pixels (>= img_size), or a multiple of
    img_size (a float from 1 to 4, e.g. 1.15), so that `rrc` crops from real pixels and evaluation resizes and
    centre-crops (`crop_pct`) from them; null: img_size / crop_pct when crop_pct < 1, else img_size."""
    interpolation: Literal[INTERPOLATIONS] = "area"
    """Resampling of every resize (OpenCV INTER_AREA / INTER_LINEAR / INTER_CUBIC); with pretrained weights the
    model's own unless set."""
    crop_pct: float = Field(1.0, gt=0, le=1)
    """Validation and test: resize to img_size / crop_pct, then centre-crop img_size (timm's eval transform);
    1: resize to img_size. With pretrained weights the model's own unless set."""
    rrc: bool = False
    """Training starts with RandomResizedCrop to img_size (from the cached cache_size images) instead of a
    resize."""
    rrc_scale: list[float] = Field([0.08, 1.0], min_length=2, max_length=2)
    """RandomResizedCrop: range of the crop's area as a share of the image (timm's default)."""
    rrc_ratio: list[float] = Field([0.75, 4 / 3], min_length=2, max_length=2)
    """RandomResizedCrop: range of the crop's aspect ratio (timm's default)."""
    batch_size: int = Field(64, ge=1)
    """Images per training batch (under DDP the global batch: it must divide by the GPU count)."""
    hflip: bool = True
    """Random horizontal flips in training."""
    vflip: bool = False
    """Random vertical flips in training."""
    augment: Literal[AUGMENT_PRESETS] = "light"
    """Albumentations preset: `light` (small shift/scale/rotate); `medium` (+ stronger geometry,
    brightness/contrast, HSV); `heavy` (+ blur/noise, CoarseDropout)."""
    extra_augs: list[dict] = []
    """Any albumentations transforms, e.g. `[{name: CLAHE, p: 0.3}, {name: OneOf, transforms: [...]}]`; unknown
    names or arguments are errors."""
    auto_augment: Optional[str] = None
    """timm RandAugment string (`rand-m9-mstd0.5-inc1`) or `trivial` (TrivialAugmentWide)."""
    random_erasing: float = Field(0.0, ge=0, le=1)
    """timm RandomErasing probability, per image."""
    multiscale: list[int] = []
    """Train each batch at a size drawn from this list (validation stays at img_size)."""
    mean: list[float] = [0.485, 0.456, 0.406]
    """Normalisation mean per RGB channel (ImageNet's)."""
    std: list[float] = [0.229, 0.224, 0.225]
    """Normalisation standard deviation per RGB channel (ImageNet's)."""


def cache_side(data: Data) -> int:
    """S, the side of the cached squares: data.cache_size in pixels (an int) or times img_size (a float); unset,
    eval_side (so evaluation's resize is the identity)."""
    size = data.cache_size
    if size is None:
        return eval_side(data)
    return size if isinstance(size, int) else round(data.img_size * size)


def eval_side(data: Data) -> int:
    """The side evaluation resizes to before its centre crop of img_size: round(img_size / crop_pct)."""
    return round(data.img_size / data.crop_pct) if data.crop_pct < 1 else data.img_size


class Mixup(Section):
    """timm's Mixup/CutMix on the (N, K) float targets; off when both alphas are 0."""
    mixup_alpha: float = Field(0.0, ge=0)
    """Mixup: Beta(alpha, alpha) mixing weights; 0: no mixup."""
    cutmix_alpha: float = Field(0.0, ge=0)
    """CutMix: Beta(alpha, alpha) box areas; 0: no cutmix."""
    prob: float = Field(1.0, ge=0, le=1)
    """Chance that a batch is mixed."""
    switch_prob: float = Field(0.5, ge=0, le=1)
    """Chance of cutmix instead of mixup when both are on."""
    mode: Literal["batch", "pair", "elem"] = "batch"
    """One mix per `batch`, per `pair` of samples, or per `elem`ent (timm's modes)."""
    off_epoch: Optional[int] = Field(None, ge=0)
    """No mixing from this epoch (0-based) on."""


SCHEDULERS = ("cosine", "linear", "tanh", "step", "multistep", "exponential", "plateau", "poly", "constant", "onecycle",
              "none")


class Train(Section):
    """Optimisation of one fold: optimizer, LR schedule, weight averaging, precision and seed."""
    epochs: int = Field(10, ge=1)
    """Epochs per fold."""
    optimizer: str = "adamw"
    """Any timm optimizer: `sgd` (nesterov), `momentum`, `adam`, `adamw`, `radam`, `lamb`, `novograd`,
    `lookahead_<name>`, ..."""
    lr: float = Field(1e-3, gt=0)
    """Peak learning rate, reached after the warmup."""
    weight_decay: float = Field(0.01, ge=0)
    """Weight decay."""
    momentum: float = Field(0.9, ge=0, lt=1)
    """Momentum of the SGD-type optimizers."""
    no_wd_norm_bias: bool = True
    """No weight decay on norm layers and biases (1-d parameters)."""
    layer_decay: Optional[float] = Field(None, gt=0, le=1)
    """Layer-wise LR decay towards the stem, e.g. 0.75 (timm, as in BEiT)."""
    head_lr_mult: float = Field(1.0, gt=0)
    """Head LR = lr x this (discriminative backbone and head LRs)."""
    freeze_epochs: int = Field(0, ge=0)
    """Train only the head for the first N epochs (backbone frozen, its BatchNorm statistics kept)."""
    scheduler: Literal[SCHEDULERS] = "cosine"
    """LR schedule, stepped per update except `plateau` (per epoch, on the validation metric); `linear`: straight
    down to min_lr at the last update (the robust choice under a time budget); `step`,
    `exponential`, `multistep`, `onecycle` and `cosine` restarts take the keys below."""
    warmup_epochs: int = Field(1, ge=0)
    """Linear warmup from warmup_lr to lr over this many epochs."""
    warmup_lr: float = Field(1e-5, ge=0)
    """LR at the start of the warmup."""
    min_lr: float = Field(1e-6, ge=0)
    """LR the schedule decays to."""
    decay_epochs: float = Field(2, gt=0)
    """`step` / `exponential`: decay every this many epochs."""
    decay_milestones: list[int] = [5, 8]
    """`multistep`: epochs at which the LR decays."""
    decay_rate: float = Field(0.1, gt=0)
    """`step` / `multistep` / `plateau`: LR factor at each decay; `exponential`: factor per epoch."""
    patience_epochs: int = Field(2, ge=0)
    """`plateau`: epochs without a better validation metric before the LR decays."""
    cycles: int = Field(1, ge=1)
    """Cosine with restarts: this many equal cycles over the epochs (must divide epochs; 2 cycles = 1 restart)."""
    cycle_decay: float = Field(1.0, gt=0)
    """Peak LR factor from one cycle to the next."""
    snapshots: bool = False
    """Save `snapshot_<c>.pt` at each cycle's end (snapshot ensemble: predict.checkpoint=snapshots)."""
    onecycle_pct_start: float = Field(0.3, gt=0, lt=1)
    """`onecycle`: share of the updates spent raising the LR."""
    ema: bool = False
    """Keep an exponential moving average of the weights (timm ModelEmaV3); validation and `last.pt` use it."""
    ema_decay: float = Field(0.999, gt=0, lt=1)
    """EMA decay per update."""
    swa: bool = False
    """Stochastic weight averaging (torch.optim.swa_utils) into `swa.pt`, BatchNorm statistics recomputed."""
    swa_start: float = Field(0.75, ge=0)
    """First averaged epoch: a 0-based index, or a fraction of the epochs if < 1."""
    swa_lr: float = Field(1e-4, gt=0)
    """SWA: the constant LR held while averaging."""
    swa_anneal_epochs: int = Field(1, ge=0)
    """SWA: epochs to anneal from the schedule's LR to swa_lr."""
    accum_steps: int = Field(1, ge=1)
    """Gradient accumulation: one optimizer update every N batches."""
    grad_clip: Optional[float] = Field(None, gt=0)
    """Clip the gradient norm to this; null: no clipping."""
    early_stopping: Optional[int] = Field(None, ge=1)
    """Stop after N epochs without a better validation metric; null: never."""
    time_limit: Optional[float] = Field(None, gt=0)
    """Watchdog: a fold that has trained this many seconds stops after the update it is in (then validates and
    is saved as usual; its manifest says so); its LR schedule follows the time too, so it stops at the final LR;
    null: no limit. `make plan` sets it from the budget."""
    amp: bool = True
    """Mixed precision (torch.amp autocast), on CUDA only."""
    amp_dtype: Literal["float16", "bfloat16"] = "bfloat16"
    """Autocast dtype."""
    seed: int = 42
    """Seed of the model initialisation and of the shuffle and augmentation streams (fold k adds k)."""


LOSSES = ("auto", "ce", "focal", "weighted_ce", "ohem", "bce", "soft_ce", "lovasz", "mse", "huber")


class Loss(Section):
    """The training loss; every loss takes soft targets (mixup, pseudo labels, distillation)."""
    name: Literal[LOSSES] = "auto"
    """`auto`: cross-entropy (multiclass), BCE (binary/multilabel), `mse` (regression); `ce`, `focal`, `weighted_ce`,
    `ohem`, `bce` (RSB's on multiclass; regression: on the [0, 1] target), `soft_ce`, `lovasz`, `mse`, `huber`."""
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    """Multiclass: towards uniform; binary/multilabel: towards 0.5."""
    focal_gamma: float = Field(2.0, ge=0)
    """Focal loss exponent (0: plain CE/BCE)."""
    focal_alpha: Optional[float] = Field(None, ge=0, le=1)
    """Focal loss, binary/multilabel: weight of the positives; null: unweighted."""
    class_weights: Union[Literal["auto"], list[float]] = "auto"
    """`weighted_ce`: K weights (binary `[neg, pos]`), or `auto`: inverse class frequency of the fold's training
    part (multilabel: pos_weight = neg/pos)."""
    ohem_rate: float = Field(0.7, gt=0, le=1)
    """`ohem`: mean over this fraction of the hardest samples of each batch."""
    ohem_base: Literal["ce", "focal"] = "ce"
    """`ohem`: the per-sample loss it mines (`focal`: with focal_gamma / focal_alpha)."""
    bce_target_threshold: Optional[float] = Field(None, ge=0, lt=1)
    """`bce`: binarise (mixed) soft targets above this (RSB uses 0.2); null: keep them soft."""


class LrFind(Section):
    """`make lr-find`: an LR range test on fold 0 (exponentially growing LR, smoothed loss)."""
    start_lr: float = Field(1e-7, gt=0)
    """LR of the first update."""
    end_lr: float = Field(10.0, gt=0)
    """LR of the last update."""
    steps: int = Field(100, ge=5)
    """Updates from start_lr to end_lr (fewer if the loss diverges)."""
    smoothing: float = Field(0.05, ge=0, lt=1)
    """Weight of the newest loss in its exponential moving average."""
    diverge: float = Field(4.0, gt=1)
    """Stop once the smoothed loss exceeds this many times its minimum."""
