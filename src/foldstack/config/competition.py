"""What the Kaggle folder is (task, columns, metric, submission format) and how its rows split into folds."""
from typing import Literal, Optional

from pydantic import Field, model_serializer

from .base import Section

TASKS = ("binary", "multiclass", "multilabel", "regression")
SUBMISSION_FORMATS = ("probability", "label", "class_columns", "tags", "value", "top_k")
IMAGE_SOURCES = ("file", "npy", "dicom", "channel_files", "table")
TABULAR_TYPES = ("numeric", "binary", "categorical")
# f_beta: sample-averaged for multilabel (Planet), positive class for binary, macro for multiclass;
# qwk: quadratic weighted kappa on the argmax label (ordinal classes, in competition.classes order).
# rmse, mae, r2: regression (foldstack/regression.py), on the unscaled values; map_at_k: top-k retrieval (topk.py).
METRICS = ("roc_auc", "accuracy", "log_loss", "micro_f1", "macro_f1", "qwk", "f_beta", "rmse", "mae", "r2",
           "map_at_k")


class Competition(Section):
    """How the Kaggle folder looks. Inferred once into configs/<comp>.yaml, then the user's to edit."""
    input_dir: str = ""
    """Folder of the Kaggle download; empty: `input/<comp>`."""
    layout: Literal["csv", "folders", "filenames"] = "csv"
    """`csv`: a train CSV lists ids and targets; `folders`: `train/<class>/<image>` and no train CSV;
    `filenames`: the label is the first part of each train file's name (`train/cat.0.jpg`), no train CSV."""
    train_csv: str = "train.csv"
    """Train table (id, target and group columns), in the input folder."""
    sample_submission: str = "sample_submission.csv"
    """Sample submission, in the input folder: its columns are the submission's, its ids the test images."""
    train_metadata: str = ""
    """COCO-style JSON read as the train table instead of `train_csv` (herbarium: `train_metadata.json`): its
    `images` (image_id, file_name) joined with its `annotations` (category_id, ...) on image_id; empty: `train_csv`."""
    test_metadata: str = ""
    """JSON list of the test images (`image_id`, `file_name`) naming each sample-submission id's file under
    `test_dir` (herbarium: `test_metadata.json`); empty: the id plus `test_image_ext`."""
    train_dir: str = "train"
    """Folder of the train images, in the input folder."""
    train_path: str = ""
    """A train image's path under `train_dir` as a template of the train row's columns, before
    `train_image_ext`: `{label}/{image_id}` (paddy: a folder named by each row's label, beside the csv),
    `{file_name}` (herbarium: the metadata's nested path); empty: the id."""
    test_dir: str = "test"
    """Folder of the test images, in the input folder."""
    test_path: str = ""
    """A test image's path under `test_dir` as a template of the sample submission's columns, before
    `test_image_ext`: `{id[0]}/{id}` (SETI: a folder named by the id's first character); empty: the id."""
    train_image_ext: str = ""
    """Suffix appended to a train id to get its file name (empty when the ids carry it)."""
    test_image_ext: str = ""
    """Suffix appended to a test id to get its file name (empty when the ids carry it)."""
    id_col: str = "id"
    """Id column of the train CSV and the sample submission."""
    target_cols: list[str] = ["label"]
    """Target column(s): one label or tags column, or one 0/1 column per class; regression: one numeric column
    per target."""
    task: Literal[TASKS] = "multiclass"
    """`binary` (one of two classes), `multiclass` (one of many), `multilabel` (any number of tags), `regression`
    (numbers: the model predicts each target scaled to [0, 1] by `target_range`). Ordinal grades scored by `qwk`
    (aptos: diagnosis 0-4) may train as `regression` with metric `qwk` and submission_format `label`: no key of its
    own, since the grade is a regression target in every respect (scaling, loss, blends) but its metric and its
    submission, which cut the value into grades at the cuts `stack.search_thresholds` searches on OOF."""
    classes: list[str] = []
    """Class names in the order of the prediction columns (binary: `[negative, positive]`)."""
    metric: Literal[METRICS] = "accuracy"
    """Validation and test metric; `rmse`, `mae`, `r2`: regression, on the unscaled values; `qwk`: quadratic
    weighted kappa on the argmax label, classes in
    `competition.classes` order (task regression: on the grades cut from the values, see `task`); `f_beta`: beta `competition.f_beta` (sample-averaged for multilabel, the positive
    class for binary, macro for multiclass); `map_at_k`: MAP@k of the `top_k` best classes (1 / the rank of the
    true class, 0 when it is not among them; whale-categorization-playground's MAP@5)."""
    submission_format: Literal[SUBMISSION_FORMATS] = "label"
    """`probability` (of the positive class), `label` (argmax; ordinal grades: the grade), `class_columns` (a
    probability per class), `tags` (space-separated tags above their thresholds), `value` (regression: the number
    in each target column), `top_k` (the `top_k` best classes, space-separated, best first)."""
    top_k: int = Field(5, ge=1)
    """Metric `map_at_k` / submission format `top_k`: how many classes each submitted row names (discovery counts
    them in the sample submission's cells)."""
    unknown_class: Optional[str] = None
    """Top-k: the class meaning "none of the others" (whale's `new_whale`), one of `classes`. Unset, or while no
    threshold was searched, it is ranked by its own probability like any class; with it set, `make stack`
    (`stack.search_thresholds`) searches on OOF the probability below which it is inserted instead (the first rank
    whose class's probability is below it), stored in the stack's thresholds.json and applied by `make submit`."""
    target_range: list[tuple[float, float]] = []
    """Regression: [min, max] of each target column (discovery writes the train table's): targets are scaled to
    [0, 1] by it for training, predictions stored so, and unscaled for the metric and the submission; ordinal
    grades: [[lowest, highest grade]], integers (aptos: [[0, 4]])."""
    submission_columns: list[str] = ["id", "label"]
    """The sample submission's columns in order: every stage checks them at start-up."""
    tag_threshold: float = Field(0.5, gt=0, lt=1)
    """Multilabel: a tag is submitted above this probability (unless the stack searched per-class thresholds)."""
    group_col: Optional[str] = None
    """Column of group ids: rows sharing a group never straddle folds."""
    f_beta: float = Field(2.0, gt=0)
    """Beta of metric `f_beta` (in the artifact hashes only when that is the metric)."""
    drop_unlabeled: bool = False
    """Train rows with an empty target: refused naming the CSV rows (false), or left out and counted in the log
    (true)."""
    image_source: Literal[IMAGE_SOURCES] = "file"
    """Where a row's pixels are (data/sources.py): `file` (an image file per id), `npy` (an array per id: H x W,
    H x W x C or C x H x W), `dicom` (a DICOM file per id), `channel_files` (one grayscale file per channel:
    `<id><suffix>` for each of `channel_suffixes`), `table` (in the train table and `test_csv` themselves:
    `pixel_columns` reshaped to `pixel_shape`). Sources other than RGB files set `model.in_chans` and a
    `data.mean`/`data.std` measured on train (discovery writes them)."""
    channel_suffixes: list[str] = []
    """`channel_files`: the suffix of each channel's file after the id, in channel order (`_red.png`, ...)."""
    pixel_columns: list[str] = []
    """`table`: the columns holding pixels, as names or patterns (`pixel*`); one value per column (row-major,
    channels last) or, in a JSON table, one list of H*W values per channel."""
    pixel_shape: list[int] = []
    """`table`: [height, width] of each image."""
    test_csv: Optional[str] = None
    """The table of the test rows (`test.csv`, `test.json`): their pixels (`table`) and their `tabular_cols`,
    matched to the sample submission by `id_col`, or, without that column, row by row in the sample submission's
    order."""
    tabular_cols: dict[str, Literal[TABULAR_TYPES]] = {}
    """Meta features: columns of the train table, also in the test rows' table (`test_csv`, else the sample
    submission), that are not id, target or group, each `numeric` (a missing value: the train median and a
    missing flag), `binary` (two values) or `categorical` (one-hot over the train values, missing a level of its
    own). Discovery lists them; the level-2 meta-models (`stack.method` xgboost / logreg / ridge) see them beside
    the OOF probabilities (data/tabular.py); blends and the network do not."""

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # f_beta is part of the artifact hashes only where it matters: other metrics ignore it; the image source's
        # keys only when the source is not image files (the keys of runs on files stay what they were).
        out = handler(self)
        if self.metric != "f_beta":
            out.pop("f_beta", None)
        # unset: other layouts, and competitions without tabular columns, keep their artifact keys
        for key in ("train_metadata", "test_metadata", "train_path", "test_path", "tabular_cols", "test_csv"):
            if not out.get(key):
                out.pop(key, None)
        if self.metric != "map_at_k" and self.submission_format != "top_k":  # other competitions' keys unchanged
            out.pop("top_k", None)
        if self.unknown_class is None:
            out.pop("unknown_class", None)
        if self.task != "regression":  # the artifact keys of classification runs stay what they were
            out.pop("target_range", None)
        if self.image_source == "file":
            for key in ("image_source", "channel_suffixes", "pixel_columns", "pixel_shape"):
                out.pop(key, None)
        return out


FOLD_METHODS = ("auto", "kfold", "stratified", "group", "stratified_group", "multilabel_stratified",
                "multilabel_rarest")


class Folds(Section):
    """How train rows split into folds. `auto`: StratifiedKFold (binary/multiclass), MultilabelStratifiedKFold
    (multilabel: iterative stratification; past rows x tags² = 2e10, where it would take minutes to hours, e.g.
    imet's 142k rows x 3,474 tags, `multilabel_rarest`, an approximation whose per-tag balance the log states);
    with groups (competition.group_col, or duplicate images under folds.dedupe) StratifiedGroupKFold, and for
    multilabel GroupKFold with a group column (duplicate sets alone stay stratified, each set one unit). A split
    that leaves a validation fold without a class the metric needs is refused."""
    n_splits: int = Field(5, ge=2)
    """Number of folds."""
    seed: int = 42
    """Seed of the shuffled split."""
    method: Literal[FOLD_METHODS] = "auto"
    """Splitter: `auto` (see the section), or `kfold`, `stratified`, `group`, `stratified_group` (scikit-learn's
    KFold, StratifiedKFold, GroupKFold, StratifiedGroupKFold), `multilabel_stratified` (iterative
    stratification), `multilabel_rarest` (StratifiedKFold on each row's rarest tag, strata of fewer rows than
    folds pooled: seconds at any size, each tag less evenly spread than iterative stratification spreads it)."""
    dedupe: bool = False
    """Byte-identical train images share a group, so they never sit in two folds."""
