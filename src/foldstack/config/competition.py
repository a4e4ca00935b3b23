"""What the Kaggle folder is (task, columns, metric, submission format) and how its rows split into folds."""
from typing import Literal, Optional

from pydantic import Field, model_serializer

from .base import Section

TASKS = ("binary", "multiclass", "multilabel")
SUBMISSION_FORMATS = ("probability", "label", "class_columns", "tags")
# f_beta: sample-averaged for multilabel (Planet), positive class for binary, macro for multiclass;
# qwk: quadratic weighted kappa on the argmax label (ordinal classes, in competition.classes order).
METRICS = ("roc_auc", "accuracy", "log_loss", "micro_f1", "macro_f1", "qwk", "f_beta")


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
    drop_unlabeled: bool = False        # train rows with an empty target: refused (false) or left out (true)

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # f_beta is part of the artifact hashes only where it matters: other metrics keep their hashes.
        out = handler(self)
        if self.metric != "f_beta":
            out.pop("f_beta", None)
        if not self.drop_unlabeled:  # the default changes no row: hashes stay those of before the key existed
            out.pop("drop_unlabeled", None)
        return out


FOLD_METHODS = ("auto", "kfold", "stratified", "group", "stratified_group", "multilabel_stratified")


class Folds(Section):
    """How train rows split into folds. auto: StratifiedKFold (binary/multiclass), MultilabelStratifiedKFold
    (multilabel: iterative stratification), their group-aware versions with competition.group_col or duplicate
    images (StratifiedGroupKFold; GroupKFold for multilabel with a group column)."""
    n_splits: int = Field(5, ge=2)
    seed: int = 42
    method: Literal[FOLD_METHODS] = "auto"
    dedupe: bool = False                # byte-identical train images share a group: never in two folds

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # dedupe is part of the folds hash only when on: existing splits keep their keys.
        out = handler(self)
        if not self.dedupe:
            out.pop("dedupe", None)
        return out
