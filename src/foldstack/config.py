"""One typed config schema with every default in one place.

Resolution order (later wins): schema defaults < configs/<comp>.yaml < configs/exp/<exp>.yaml < CLI overrides
(`--set train.epochs=3`, Make's OVERRIDES). Each layer is validated on its own so an error names its source.
"""
from pathlib import Path
from typing import Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer

from .errors import PipelineError

TASKS = ("binary", "multiclass", "multilabel")
SUBMISSION_FORMATS = ("probability", "label", "class_columns", "tags")
# f_beta: sample-averaged for multilabel (Planet), positive class for binary, macro for multiclass;
# qwk: quadratic weighted kappa on the argmax label (ordinal classes, in competition.classes order).
METRICS = ("roc_auc", "accuracy", "log_loss", "micro_f1", "macro_f1", "qwk", "f_beta")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Competition(Section):
    """How the Kaggle folder looks. Inferred once into configs/<comp>.yaml, then the user's to edit."""
    input_dir: str = ""                 # default: input/<comp>
    layout: Literal["csv", "folders"] = "csv"   # folders: train/<class>/<image>, no train csv
    train_csv: str = "train.csv"
    sample_submission: str = "sample_submission.csv"
    train_dir: str = "train"
    test_dir: str = "test"
    train_image_ext: str = ""           # appended to an id to get its file name ('' when ids carry it)
    test_image_ext: str = ""
    id_col: str = "id"
    target_cols: list[str] = ["label"]  # one label/tags column, or one 0/1 column per class
    task: Literal[TASKS] = "multiclass"
    classes: list[str] = []             # binary: [negative, positive]
    metric: Literal[METRICS] = "accuracy"
    submission_format: Literal[SUBMISSION_FORMATS] = "label"
    submission_columns: list[str] = ["id", "label"]
    tag_threshold: float = Field(0.5, gt=0, lt=1)
    group_col: Optional[str] = None     # rows sharing a group never straddle folds
    f_beta: float = Field(2.0, gt=0)    # beta of metric f_beta

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # f_beta is part of the artifact hashes only where it matters: other metrics keep their hashes.
        out = handler(self)
        if self.metric != "f_beta":
            out.pop("f_beta", None)
        return out


class Folds(Section):
    n_splits: int = Field(5, ge=2)
    seed: int = 42
    method: Literal["auto", "kfold", "stratified", "group", "stratified_group"] = "auto"


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


CHECKPOINTS = ("last", "best", "ema", "swa", "snapshots")


TTA_VIEWS = ("hflip", "vflip", "d4", "five_crop", "ten_crop")
TTA_MERGES = ("mean", "geometric", "max")


class Predict(Section):
    """Inference: every view of a batch goes through the model in one call (chunked at runtime.infer_batch)."""
    tta: list[Literal[TTA_VIEWS]] = ["hflip"]  # combinable; d4 = the 8 rotations/flips; the identity is always in
    tta_scales: list[int] = []          # extra views: the batch resized to each of these sizes
    tta_crop_fraction: float = Field(0.875, gt=0, le=1)  # five/ten_crop: crops of img_size from the batch
                                                        # upscaled to img_size / this
    tta_merge: Literal[TTA_MERGES] = "mean"  # how a model's views combine (probabilities); models are averaged
    # last: the final weights (EMA ones when train.ema); best: picked on the fold it predicts (optimistic OOF);
    # ema / swa / snapshots (mean of the cycle snapshots); a list averages several models per fold.
    checkpoint: Union[Literal[CHECKPOINTS], list[Literal[CHECKPOINTS]]] = "last"


class LrFind(Section):
    """`make lr-find`: an LR range test on fold 0 (exponentially growing LR, smoothed loss)."""
    start_lr: float = Field(1e-7, gt=0)
    end_lr: float = Field(10.0, gt=0)
    steps: int = Field(100, ge=5)
    smoothing: float = Field(0.05, ge=0, lt=1)
    diverge: float = Field(4.0, gt=1)   # stop once the smoothed loss exceeds this many times its minimum


STACK_METHODS = ("mean", "rank", "weighted", "geometric", "xgboost", "logreg")
META_FEATURES = ("width", "height", "aspect", "file_size")


class XGBoost(Section):
    """The level-2 XGBoost model: defaults sized for a few thousand rows and a handful of features."""
    n_estimators: int = Field(500, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    max_depth: int = Field(3, ge=1)
    min_child_weight: float = Field(1.0, ge=0)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)
    reg_alpha: float = Field(0.0, ge=0)
    early_stopping_rounds: Optional[int] = Field(50, ge=1)  # watched on an inner fold, never the predicted one
    extra: dict = {}                    # any other xgboost.XGBClassifier argument


class Stack(Section):
    """Level 2 on the level-1 folds: blends (mean/rank/weighted/geometric) or a meta-model (xgboost/logreg)
    fitted for fold k on the other folds' OOF rows only."""
    experiments: list[str] = []         # experiment names (their latest predictions); [] = the current experiment
    method: Literal[STACK_METHODS] = "mean"   # what make stack outputs (and make submit submits)
    compare: list[Literal[STACK_METHODS]] = ["mean", "rank", "weighted", "geometric"]  # extra rows in report.csv
    weights_objective: Literal["log_loss", "metric"] = "log_loss"  # weighted: what the weights optimise on OOF
    meta_features: list[Literal[META_FEATURES]] = []  # xgboost/logreg: image header features beside the OOF
    xgboost: XGBoost = XGBoost()
    logreg_c: float = Field(1.0, gt=0)  # logreg: inverse regularisation strength
    search_thresholds: bool = True      # multilabel: per-class thresholds searched on OOF, applied to test
    seed: int = 42


PSEUDO_RULES = ("threshold", "top_fraction", "all")


class Pseudo(Section):
    """Pseudo-label rounds. `make pseudo ROUND=n` selects test rows from the test predictions of a level built on
    round n-1's models (round 0: no pseudo rows), trains every stacked experiment on train + those rows
    (pseudo.round=n), predicts and stacks them. Validation folds hold real train rows only."""
    source: str = "stack"               # stack: the stack's output level; or an experiment name
    rule: Literal[PSEUDO_RULES] = "threshold"  # threshold: confidence >= threshold; top_fraction: the most
                                        # confident fraction of each predicted class (keeps the class ratio); all
    threshold: float = Field(0.95, gt=0, lt=1)
    fraction: float = Field(0.3, gt=0, le=1)
    soft: bool = False                  # targets: the predicted distribution (soft) instead of the hard label
    round: int = Field(0, ge=0)         # train on round n's pseudo-label set (0: none); make pseudo ROUND=n sets it
    weight: float = Field(1.0, gt=0, le=1)  # fraction of the pseudo rows drawn (afresh) into each epoch: < 1
                                        # down-weights them against the real rows

    def selection(self) -> dict:
        """The keys that decide which rows a set holds (its hash), not how training uses it."""
        return self.model_dump(exclude={"round", "weight"})


class Distill(Section):
    """Knowledge distillation: the student (this experiment) learns from a teacher experiment's predictions:
    its OOF row for each train row (from the model whose validation fold held that row) and its test
    predictions for the test rows. loss = (1 - alpha) * loss(hard labels) + alpha * T^2 * CE(soft(student / T),
    soft(teacher / T))."""
    teacher: Optional[str] = None       # experiment name (its latest predictions on the same folds); None: off
    alpha: float = Field(0.5, ge=0, le=1)   # weight of the teacher term
    temperature: float = Field(2.0, gt=0)   # softens both distributions (T > 1: more of the dark knowledge)
    test_rows: bool = True              # also train on the test rows (hard part: the teacher's label)


class Submit(Section):
    source: str = "stack"               # stack: the stack's output; or an experiment name (its predictions)
    round: Optional[int] = Field(None, ge=0)  # pseudo-label round to submit; None: the latest one built


class Runtime(Section):
    """Settings that never change results: excluded from artifact hashes."""
    num_workers: int = Field(2, ge=0)
    infer_batch: int = Field(1024, ge=1)  # most images (views included) per inference forward call
    device: str = "auto"                # auto: cuda if available, else cpu
    progress: bool = True


class Config(Section):
    competition: Competition = Competition()
    folds: Folds = Folds()
    model: Model = Model()
    data: Data = Data()
    train: Train = Train()
    mixup: Mixup = Mixup()
    loss: Loss = Loss()
    predict: Predict = Predict()
    stack: Stack = Stack()
    submit: Submit = Submit()
    pseudo: Pseudo = Pseudo()
    distill: Distill = Distill()
    lr_find: LrFind = LrFind()
    runtime: Runtime = Runtime()


def _validation_message(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    got = first.get("input")
    got = "" if isinstance(got, dict) or first["type"] == "missing" else f" (got {got!r})"
    return f"config error in {source}: {key}: {msg}{got}"


def validate(data: dict, source: str) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise PipelineError(_validation_message(e, source)) from None


def deep_merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise PipelineError(f"{path}: invalid YAML{where}: {getattr(e, 'problem', e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def parse_overrides(items: list[str]) -> dict:
    """['train.epochs=3', 'predict.tta=[]'] -> nested dict; values parsed as YAML scalars/lists."""
    out: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise PipelineError(f"override {item!r}: expected section.key=value")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise PipelineError(f"override {item!r}: {p} is not a section")
        node[leaf] = value
    return out


def resolve(layers: list[tuple[str, dict]]) -> Config:
    """Validate each (source, dict) layer alone, then merge them in order over the defaults."""
    merged: dict = {}
    for source, data in layers:
        validate(data, source)
        merged = deep_merge(merged, data)
    return validate(merged, "merged config")


def sections(cfg: Config, names) -> dict:
    return {n: getattr(cfg, n).model_dump() for n in names}
