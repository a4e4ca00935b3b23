"""Submission files: build one in the competition's format, validate it, score it against labels."""
from pathlib import Path

import numpy as np
import pandas as pd

from .config.competition import Competition
from .data.table import Table, class_index, encode_targets
from .errors import PipelineError
from .metrics import comp_score, hard_predictions
from .ordinal import grades, is_ordinal, to_grades
from .regression import scale, target_values, unscale
from .topk import ranking, submitted_map_at_k
from .utils.io import read_csv, require_columns
from .wide import ClassTargets, TopProbs, refuse_dense


def build_submission(comp: Competition, ids: list[str], probs: np.ndarray, thresholds=None) -> pd.DataFrame:
    """probs: (N, n_outputs) from the predict/stack stages; thresholds: per-class (tags; top_k: the unknown
    class's entry), default tag_threshold."""
    id_col, cols = comp.submission_columns[0], comp.submission_columns[1:]
    if isinstance(probs, TopProbs):  # predict.keep_top: the best classes are what a label or ranking names
        if comp.submission_format == "label":
            return pd.DataFrame({id_col: ids, cols[0]: [comp.classes[i] for i in probs.argmax()]})
        if comp.submission_format == "top_k" and probs.top >= comp.top_k:
            names = [" ".join(comp.classes[i] for i in row) for row in probs.classes[:, :comp.top_k]]
            return pd.DataFrame({id_col: ids, cols[0]: names})
        refuse_dense(f"submission format {comp.submission_format} (top {comp.top_k} of {probs.top} kept)"
                     if comp.submission_format == "top_k" else f"submission format {comp.submission_format}")
    if comp.submission_format == "probability":
        body = {cols[0]: probs[:, 0]}
    elif comp.submission_format == "class_columns":
        body = {c: probs[:, comp.classes.index(c)] for c in cols}
    elif comp.submission_format == "value":  # regression: predictions are scaled to [0, 1]
        values = unscale(probs, comp.target_range)
        body = {c: values[:, comp.target_cols.index(c)] for c in cols}
    elif comp.submission_format == "top_k":  # the k best classes, best first (topk.py)
        body = {cols[0]: [" ".join(comp.classes[i] for i in row) for row in ranking(comp, probs, thresholds)]}
    elif is_ordinal(comp):  # the grade: the value cut at the stack's searched cuts (None: rounded)
        body = {cols[0]: to_grades(comp, probs, thresholds)}
    elif comp.submission_format == "label":
        full = np.column_stack([1 - probs[:, 0], probs[:, 0]]) if comp.task == "binary" else probs
        body = {cols[0]: [comp.classes[i] for i in full.argmax(1)]}
    else:  # tags: every class over the threshold, the top one when none is
        hard = hard_predictions(probs, "multilabel", comp.tag_threshold if thresholds is None else thresholds)
        hard[np.arange(len(probs)), probs.argmax(1)] |= hard.sum(1) == 0
        body = {cols[0]: [" ".join(c for c, h in zip(comp.classes, row) if h) for row in hard]}
    return pd.DataFrame({id_col: ids, **body})


def validate_submission(sub: pd.DataFrame, sample: pd.DataFrame, comp: Competition, source: str = "submission") -> None:
    """Raise a one-line PipelineError unless `sub` would be accepted where `sample` is the template."""
    if list(sub.columns) != list(sample.columns):
        raise PipelineError(f"{source}: columns {list(sub.columns)} differ from sample submission {list(sample.columns)}")
    id_col = sample.columns[0]
    got, want = sub[id_col].astype(str).tolist(), sample[id_col].astype(str).tolist()
    if len(got) != len(want):
        raise PipelineError(f"{source}: {len(got)} rows, sample submission has {len(want)}")
    if got != want:
        row = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
        what = "ids in a different order" if sorted(got) == sorted(want) else "unknown id"
        raise PipelineError(f"{source} row {row + 2}: {what}: {got[row]!r} where the sample has {want[row]!r}")
    for col in sample.columns[1:]:
        values = sub[col]
        blank = values.isna() | (values.astype(str).str.strip() == "")
        if blank.any():
            raise PipelineError(f"{source} row {int(np.flatnonzero(blank)[0]) + 2}: {col} is empty/NaN")
        if comp.submission_format in ("probability", "class_columns"):
            numbers = pd.to_numeric(values, errors="coerce")
            bad = numbers.isna() | (numbers < 0) | (numbers > 1)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise PipelineError(f"{source} row {i + 2}: {col}={values.iloc[i]!r} is not a probability in [0, 1]")
        elif comp.submission_format == "value":
            bad = ~np.isfinite(pd.to_numeric(values, errors="coerce").to_numpy(np.float64))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise PipelineError(f"{source} row {i + 2}: {col}={values.iloc[i]!r} is not a number")
        else:
            known = set(map(str, grades(comp))) if is_ordinal(comp) else set(comp.classes)
            split = comp.submission_format in ("tags", "top_k")
            tokens = values.astype(str).str.split() if split else values.astype(str).map(lambda v: [v])
            most = comp.top_k if comp.submission_format == "top_k" else len(known)
            bad = tokens.map(lambda ts: not ts or len(ts) > most or any(t not in known for t in ts))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise PipelineError(f"{source} row {i + 2}: {col}={str(values.iloc[i])!r} is not a known class"
                                    + (f" (or names more than {most})" if split and most < len(known) else ""))


def submission_probs(sub: pd.DataFrame, comp: Competition) -> np.ndarray:
    """A submission back as an (N, n_outputs) matrix, so scoring shares the metrics code."""
    cols = comp.submission_columns[1:]
    if comp.submission_format == "probability":
        return sub[[cols[0]]].astype(float).to_numpy()
    if comp.submission_format == "class_columns":
        return sub[comp.classes].astype(float).to_numpy()
    if comp.submission_format == "value":  # scaled as the predictions are
        return scale(target_values(sub, list(comp.target_cols), "submission"), comp.target_range)
    # a label/tags column reads like the train target column
    frame = sub.rename(columns={cols[0]: comp.target_cols[0]})
    table = Table(frame.iloc[:, 0].astype(str).tolist(), [], frame, "submission")
    return encode_targets(table, comp.model_copy(update={"target_cols": comp.target_cols[:1]}))


def score_file(root: Path, submission: str, labels: str, sample: pd.DataFrame, comp: Competition) -> float:
    """The metric of the CSV `submission` (validated against `sample`) against the CSV `labels`, both under root."""
    sub = read_csv(Path(root) / submission, "submission")
    validate_submission(sub, sample, comp, source=submission)
    return score_submission(sub, read_csv(Path(root) / labels, "labels file"), comp, labels)


def wide_scored(comp: Competition) -> bool:
    """A label submission of a multiclass task under a metric of the labels alone: scored from class indices."""
    return (comp.task == "multiclass" and comp.submission_format == "label" and len(comp.target_cols) == 1
            and comp.metric in ("accuracy", "macro_f1", "f_beta"))


def score_submission(sub: pd.DataFrame, labels: pd.DataFrame, comp: Competition, labels_source: str) -> float:
    id_col = comp.submission_columns[0]
    require_columns(labels, [id_col, *comp.target_cols], labels_source)
    dup = labels.index[labels[id_col].duplicated()]
    if len(dup):  # which of two labels would count is a guess: refuse
        raise PipelineError(f"{labels_source} row {dup[0] + 2}: duplicate id {labels[id_col][dup[0]]!r}")
    labels = labels.set_index(labels[id_col].astype(str)).reindex(sub[id_col].astype(str))
    if labels[id_col].isna().any():
        raise PipelineError(f"{labels_source}: no label for id {labels.index[labels[id_col].isna()][0]!r}")
    labels = labels.reset_index(drop=True)
    if comp.task == "regression":  # scaled, not range-checked: a test value may lie outside the train range
        y = scale(target_values(labels, list(comp.target_cols), labels_source), comp.target_range)
    else:
        table = Table(labels[id_col].tolist(), [], labels, labels_source)
        if wide_scored(comp):  # class indices, never a (rows x classes) one-hot (herbarium: 210k x 15,501)
            submitted = sub.rename(columns={comp.submission_columns[1]: comp.target_cols[0]})
            predicted = class_index(Table(table.ids, [], submitted, "submission"), comp)
            return comp_score(comp, ClassTargets(class_index(table, comp), len(comp.classes)),
                              TopProbs(predicted[:, None].astype(np.int32), np.ones((len(sub), 1), np.float32),
                                       len(comp.classes)))
        y = (ClassTargets(class_index(table, comp), len(comp.classes)) if comp.submission_format == "top_k"
             else encode_targets(table, comp))
    if comp.submission_format == "top_k":  # scored from the submitted ranking itself, not a matrix
        ranked = sub[comp.submission_columns[1]].astype(str).str.split().tolist()
        return submitted_map_at_k(y, ranked, comp.classes, comp.top_k)
    return comp_score(comp, y, submission_probs(sub, comp))
