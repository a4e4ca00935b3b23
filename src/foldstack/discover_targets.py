"""What a competition's target is, from its train table and sample submission: the target column(s), the task,
the classes in order, and the task's default metric and submission format (discovery, discover.py)."""
import pandas as pd

from .errors import PipelineError


def sort_classes(values) -> list[str]:
    values = sorted(set(values))
    numeric = pd.to_numeric(pd.Series(values), errors="coerce").notna().all()
    return sorted(values, key=float) if numeric else values


def looks_like_tags(values: pd.Series) -> bool:
    """Space-separated tags: the tokens combine into more distinct values than there are tokens."""
    if not values.str.contains(r"\s").any():
        return False
    tokens = {t for v in values for t in v.split()}
    return len(tokens) < values.nunique()


def single_column_task(values: pd.Series) -> dict:
    if looks_like_tags(values):
        tokens = sort_classes(t for v in values for t in v.split())
        return dict(task="multilabel", classes=tokens, metric="micro_f1", submission_format="tags")
    classes = sort_classes(values)
    if len(classes) == 2 and set(classes) <= {"0", "1", "0.0", "1.0"}:
        return dict(task="binary", classes=classes, metric="roc_auc", submission_format="probability")
    return dict(task="multiclass", classes=classes, metric="accuracy", submission_format="label")


def target_columns(train: pd.DataFrame, id_col: str, sub_targets: list[str], train_path) -> list[str]:
    others = [c for c in train.columns if c != id_col]
    if sub_targets and all(c in train.columns for c in sub_targets):
        return sub_targets
    if len(sub_targets) > 1:  # one label column in train, one probability column per class in the submission
        for col in others:
            if set(train[col]) - {""} <= set(sub_targets):  # blank cells are refused or dropped after this
                return [col]
    if len(others) == 1:
        return others
    raise PipelineError(f"{train_path}: cannot tell the target column among {others}; "
                        f"set competition.target_cols in the config")


def task_of(train: pd.DataFrame, target_cols: list[str], sub_targets: list[str], train_path) -> dict:
    if len(target_cols) > 1:  # one 0/1 (or probability) column per class
        onehot = train[target_cols].apply(pd.to_numeric, errors="coerce")
        if onehot.isna().any().any():
            raise PipelineError(f"{train_path}: class columns {target_cols} must hold numbers")
        task = "multiclass" if (onehot.sum(axis=1) == 1).all() else "multilabel"
        return dict(task=task, classes=target_cols, metric="log_loss", submission_format="class_columns")
    if len(sub_targets) > 1 and set(train[target_cols[0]]) <= set(sub_targets):
        return dict(task="multiclass", classes=sub_targets, metric="log_loss", submission_format="class_columns")
    return single_column_task(train[target_cols[0]])


def top_k_submission(sub: pd.DataFrame, sub_targets: list[str], train_values: pd.Series, task: dict) -> dict:
    """A single-label target (no label holds a space) whose sample submission's cells each hold the same k > 1
    space-separated labels (whale: 'new_whale w_1287fbc w_98baff9 w_7554f44 w_1eafe46'): the k best classes are
    submitted, best first, scored by MAP@k (topk.py); {} otherwise."""
    if task["task"] != "multiclass" or task["submission_format"] != "label" or len(sub_targets) != 1:
        return {}
    if train_values.astype(str).str.contains(r"\s").any():  # class names with spaces (plant seedlings)
        return {}
    counts = sub[sub_targets[0]].astype(str).str.split().str.len()
    if counts.nunique() != 1 or int(counts.iloc[0]) < 2:
        return {}
    return dict(metric="map_at_k", submission_format="top_k", top_k=int(counts.iloc[0]))


def check_ranked_metric(comp: dict, sub_path) -> None:
    """MAP@k named by description.md or the slug needs a sample submission of k labels a row: else one line."""
    if comp.get("metric") == "map_at_k" and comp.get("submission_format") != "top_k":
        raise PipelineError(f"{sub_path}: the competition is scored on MAP@k, but the sample submission's cells do "
                            f"not each hold k space-separated labels; set competition.submission_format top_k and "
                            f"competition.top_k in configs/<comp>.yaml")
