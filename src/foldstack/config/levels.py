"""After training: prediction and TTA, level 2 (blends, stacker), pseudo-label rounds, distillation, submit."""
from typing import Literal, Optional, Union

from pydantic import Field

from .base import Section


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
