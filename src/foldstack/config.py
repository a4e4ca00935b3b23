"""One typed config schema with every default in one place.

Resolution order (later wins): schema defaults < configs/<comp>.yaml < configs/exp/<exp>.yaml < CLI overrides
(`--set train.epochs=3`, Make's OVERRIDES). Each layer is validated on its own so an error names its source.
"""
from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import PipelineError

TASKS = ("binary", "multiclass", "multilabel")
SUBMISSION_FORMATS = ("probability", "label", "class_columns", "tags")
METRICS = ("roc_auc", "accuracy", "log_loss", "micro_f1")


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


class Folds(Section):
    n_splits: int = Field(5, ge=2)
    seed: int = 42
    method: Literal["auto", "kfold", "stratified", "group", "stratified_group"] = "auto"


class Model(Section):
    name: str = "resnet18"              # any timm model name
    pretrained_path: Optional[str] = None  # local weights file (offline): .pth/.bin/.safetensors
    drop_rate: float = Field(0.0, ge=0, lt=1)


class Data(Section):
    img_size: int = Field(64, ge=8)
    batch_size: int = Field(64, ge=1)
    hflip: bool = True
    vflip: bool = False
    affine: bool = True                 # small shift/scale/rotate
    mean: list[float] = [0.485, 0.456, 0.406]
    std: list[float] = [0.229, 0.224, 0.225]


class Train(Section):
    epochs: int = Field(10, ge=1)
    optimizer: str = "adamw"            # any timm optimizer name
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    scheduler: str = "cosine"           # any timm scheduler name
    warmup_epochs: int = Field(1, ge=0)
    min_lr: float = Field(1e-6, ge=0)
    ema: bool = False
    ema_decay: float = Field(0.999, gt=0, lt=1)
    amp: bool = True                    # torch.amp autocast on CUDA only
    amp_dtype: Literal["float16", "bfloat16"] = "bfloat16"
    grad_clip: Optional[float] = Field(None, gt=0)
    seed: int = 42


class Loss(Section):
    name: Literal["auto"] = "auto"      # auto: cross-entropy (multiclass) or BCE (binary/multilabel)
    label_smoothing: float = Field(0.0, ge=0, lt=1)


class Predict(Section):
    tta: list[Literal["hflip", "vflip"]] = ["hflip"]
    checkpoint: Literal["last", "best"] = "last"  # 'best' picks the epoch on the fold it predicts: optimistic OOF


class Stack(Section):
    experiments: list[str] = []         # experiment names to blend; [] = the current experiment
    method: Literal["mean"] = "mean"


class Runtime(Section):
    """Settings that never change results: excluded from artifact hashes."""
    num_workers: int = Field(2, ge=0)
    device: str = "auto"                # auto: cuda if available, else cpu
    progress: bool = True


class Config(Section):
    competition: Competition = Competition()
    folds: Folds = Folds()
    model: Model = Model()
    data: Data = Data()
    train: Train = Train()
    loss: Loss = Loss()
    predict: Predict = Predict()
    stack: Stack = Stack()
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
