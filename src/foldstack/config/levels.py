"""After training: prediction and TTA, level 2 (blends, stacker), pseudo-label rounds, distillation, submit."""
from typing import Literal, Optional, Union

from pydantic import Field, NonNegativeInt

from .base import Section


CHECKPOINTS = ("last", "best", "ema", "swa", "snapshots")


TTA_VIEWS = ("hflip", "vflip", "d4", "five_crop", "ten_crop")
TTA_MERGES = ("mean", "geometric", "max")


class Predict(Section):
    """Inference: every view of a batch goes through the model in one call (chunked at runtime.infer_batch)."""
    tta: list[Literal[TTA_VIEWS]] = ["hflip"]
    """Test-time augmentation views, combinable: `hflip`, `vflip`, `d4` (the 8 rotations/flips of the square),
    `five_crop`, `ten_crop` (+ their hflips); the identity is always in, duplicates run once."""
    tta_scales: list[int] = []
    """One extra view per size: the batch resized to it (a fully convolutional model takes any size)."""
    tta_crop_fraction: float = Field(0.875, gt=0, le=1)
    """`five_crop` / `ten_crop`: img_size crops of the batch upscaled to img_size / this (refused when that
    rounds to img_size)."""
    tta_merge: Literal[TTA_MERGES] = "mean"
    """How a model's views combine: `mean`, `geometric` mean or `max` of the probabilities (multiclass rows
    renormalised); models are then averaged."""
    checkpoint: Union[Literal[CHECKPOINTS], list[Literal[CHECKPOINTS]]] = "last"
    """Weights each fold predicts with: `last` (the EMA ones with train.ema), `best` (picked on the fold it
    predicts: optimistic OOF), `ema`, `swa`, `snapshots` (their mean); a list averages several models per fold."""
    fold_outlier: Literal["keep", "weight", "refuse"] = "keep"
    """How the folds' models average into the test predictions: `keep` (alike), `weight` (each fold by its OOF
    validation score; a loss by its inverse), `refuse` (`make oof` stops with one line when a fold ended far below
    the others, see fold_outlier_gap). The OOF CV line names such folds in every mode."""
    keep_top: Union[Literal["auto"], NonNegativeInt] = "auto"
    """Classes each row's probabilities keep, from training's validation to the submission (multiclass): 0 every
    class (dense (rows x classes) matrices); k > 0 the k most probable, targets held as class indices, so no stage
    holds a rows x classes matrix (herbarium's 840k x 15,501 would be 52 GB each). `auto`: 20 when train rows x
    classes exceed 1e9, else 0. Blends then `mean` only; log loss spreads the mass not kept evenly."""
    fold_outlier_gap: float = Field(0.05, ge=0)
    """A fold is far below the others when its validation score is worse than the median of the other folds' by
    more than this, in the metric's units."""


STACK_METHODS = ("mean", "rank", "weighted", "geometric", "xgboost", "logreg", "ridge")
META_FEATURES = ("width", "height", "aspect", "file_size")


class XGBoost(Section):
    """The level-2 XGBoost model: defaults sized for a few thousand rows and a handful of features."""
    n_estimators: int = Field(500, ge=1)
    """Most trees (early stopping picks the number)."""
    learning_rate: float = Field(0.05, gt=0)
    """Boosting learning rate."""
    max_depth: int = Field(3, ge=1)
    """Depth of each tree."""
    min_child_weight: float = Field(1.0, ge=0)
    """Least hessian weight in a leaf."""
    subsample: float = Field(0.8, gt=0, le=1)
    """Share of the rows each tree sees."""
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    """Share of the features each tree sees."""
    reg_lambda: float = Field(1.0, ge=0)
    """L2 regularisation of the leaf weights."""
    reg_alpha: float = Field(0.0, ge=0)
    """L1 regularisation of the leaf weights."""
    early_stopping_rounds: Optional[int] = Field(50, ge=1)
    """Stop after this many rounds without improvement on an inner fold, never the predicted one; null: all
    trees."""
    extra: dict = {}
    """Any other xgboost.XGBClassifier argument (a regression's: XGBRegressor)."""


class Stack(Section):
    """Level 2 on the level-1 folds: blends (mean/rank/weighted/geometric) or a meta-model (xgboost; logreg
    classifies, ridge regresses) fitted for fold k on the other folds' OOF rows only."""
    experiments: list[str] = []
    """Experiments to combine (each one's latest predictions; the current one's exact ones); []: the current
    experiment alone."""
    method: Literal[STACK_METHODS] = "mean"
    """The level `make stack` outputs and `make submit` submits."""
    compare: list[Literal[STACK_METHODS]] = ["mean", "rank", "weighted", "geometric"]
    """Further levels fitted only for the report's table."""
    weights_objective: Literal["log_loss", "metric"] = "log_loss"
    """`weighted`: what the weights optimise on OOF rows (SLSQP on log loss, a regression's on the squared error
    of the scaled target; or Nelder-Mead on the metric)."""
    meta_features: list[Literal[META_FEATURES]] = []
    """`xgboost` / `logreg` / `ridge`: image-header features beside the OOF probabilities (values)."""
    xgboost: XGBoost = XGBoost()
    """The XGBoost meta-model."""
    logreg_c: float = Field(1.0, gt=0)
    """`logreg`: inverse regularisation strength."""
    ridge_alpha: float = Field(1.0, gt=0)
    """`ridge` (regression only): L2 penalty of the Ridge regressor, on standardised features."""
    search_thresholds: bool = True
    """Multilabel: per-class thresholds searched on the output level's OOF, applied to the test predictions;
    top-k with `competition.unknown_class`: that class's insertion threshold, likewise; ordinal grades (task
    regression, metric qwk): the cuts between grades, from the midpoints, by coordinate ascent on qwk (its CV in
    the table refitted fold by fold, honest); false: rounded to the nearest grade. Stored in the stack's
    thresholds.json; `make submit` applies them."""
    seed: int = 42
    """Seed of the weighted blend's random starts and of the XGBoost meta-model."""


PSEUDO_RULES = ("threshold", "top_fraction", "all")


class Pseudo(Section):
    """Pseudo-label rounds. `make pseudo ROUND=n` selects test rows from the test predictions of a level built on
    round n-1's models (round 0: no pseudo rows), trains every stacked experiment on train + those rows
    (pseudo.round=n), predicts and stacks them. Validation folds hold real train rows only."""
    source: str = "stack"
    """Level the test rows' labels come from: `stack` (the stack's output level) or an experiment name."""
    rule: Literal[PSEUDO_RULES] = "threshold"
    """`threshold`: confidence >= pseudo.threshold; `top_fraction`: the most confident pseudo.fraction of each
    predicted class (keeps the class ratio); `all`."""
    threshold: float = Field(0.95, gt=0, lt=1)
    """`threshold` rule: least confidence kept (top probability; binary max(p, 1-p); multilabel: the least sure
    tag's)."""
    fraction: float = Field(0.3, gt=0, le=1)
    """`top_fraction` rule: share of each predicted class kept."""
    soft: bool = False
    """Targets: the predicted distribution (soft) instead of the hard label."""
    round: int = Field(0, ge=0)
    """Train on round n's pseudo-label set (0: none); `make pseudo ROUND=n` sets it."""
    weight: float = Field(1.0, gt=0, le=1)
    """Share of the pseudo rows drawn afresh into each epoch: < 1 down-weights them against the real rows."""

    def selection(self) -> dict:
        """The keys that decide which rows a set holds (its hash), not how training uses it."""
        return self.model_dump(exclude={"round", "weight"})


class Distill(Section):
    """Knowledge distillation: the student (this experiment) learns from a teacher experiment's predictions:
    its OOF row for each train row (from the model whose validation fold held that row) and its test
    predictions for the test rows. loss = (1 - alpha) * loss(hard labels) + alpha * T^2 * CE(soft(student / T),
    soft(teacher / T))."""
    teacher: Optional[str] = None
    """Teacher experiment (its latest predictions on the same folds and round); null: no distillation."""
    alpha: float = Field(0.5, ge=0, le=1)
    """Weight of the teacher term."""
    temperature: float = Field(2.0, gt=0)
    """T: softens both distributions (T > 1: more of the dark knowledge)."""
    test_rows: bool = True
    """Also train on the test rows (soft part: the teacher's test predictions; hard part: its label)."""


class Submit(Section):
    """What `make submit` writes to submission.csv."""
    source: str = "stack"
    """`stack`: the stack's output level; or an experiment name (its own test predictions)."""
    round: Optional[int] = Field(None, ge=0)
    """Pseudo-label round to submit; null: the latest one built for this config."""
