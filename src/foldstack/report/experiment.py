"""One level's OOF rows analysed: confusion matrix, per-class (multilabel: per-tag) scores, calibration, class
distribution and the most confident mistakes. Each returns a DataFrame: the page shows it and writes it as CSV.

Hard predictions are the competition's (metrics.hard_predictions): argmax for multiclass, probability >
competition.tag_threshold for binary and multilabel. Binary predictions have one column, the positive class."""
import numpy as np
import pandas as pd

from ..metrics import _labels as single_labels
from ..metrics import fold_scores, hard_predictions
from ..wide import ClassTargets, TopProbs, is_wide, labels_of

N_BINS = 10


def confusion(y: np.ndarray, p: np.ndarray, comp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(counts, row-normalised) OOF confusion matrix, true class by row, predicted by column (single-label tasks)."""
    from sklearn.metrics import confusion_matrix

    true, pred, labels = single_labels(y, p, comp.task, comp.tag_threshold)
    counts = confusion_matrix(true, pred, labels=labels)
    names = list(comp.classes)
    rows = counts.sum(1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    index = pd.Index(names, name="true")
    return pd.DataFrame(counts, index=index, columns=names), pd.DataFrame(normalised, index=index, columns=names)


def per_class(y: np.ndarray, p: np.ndarray, comp) -> pd.DataFrame:
    """Precision, recall, F1 and support of every class (multilabel: every tag, with its ROC AUC, NaN when the
    tag is always or never present)."""
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    if comp.task == "multilabel":
        true = (y >= 0.5).astype(int)
        hard = hard_predictions(p, comp.task, comp.tag_threshold)
        precision, recall, f1, support = precision_recall_fscore_support(true, hard, average=None, zero_division=0)
        auc = [roc_auc_score(true[:, k], p[:, k]) if 0 < true[:, k].sum() < len(true) else np.nan
               for k in range(true.shape[1])]
        return pd.DataFrame({"tag": list(comp.classes), "precision": precision, "recall": recall, "f1": f1,
                             "support": support, "predicted": hard.sum(0), "auc": auc})
    true, pred, labels = single_labels(y, p, comp.task, comp.tag_threshold)
    precision, recall, f1, support = precision_recall_fscore_support(true, pred, labels=labels, zero_division=0)
    return pd.DataFrame({"class": list(comp.classes), "precision": precision, "recall": recall, "f1": f1,
                         "support": support, "predicted": np.bincount(pred, minlength=len(labels))})


def calibration(y: np.ndarray, p: np.ndarray, task: str, n_bins: int = N_BINS) -> tuple[pd.DataFrame, float]:
    """Reliability table (per non-empty bin of n_bins equal widths, as sklearn's calibration_curve makes them: rows,
    mean confidence, observed frequency) and the expected calibration error, sum of rows / N x |gap|."""
    from sklearn.calibration import calibration_curve

    if is_wide(y, p):  # predict.keep_top: the top class is kept, nothing else is needed
        confidence, outcome = np.clip(p.max(1), 0, 1), (p.argmax(1) == labels_of(y)).astype(float)
    elif task == "multiclass":  # the top class's probability against whether it is right
        p = np.clip(p.astype(np.float64), 0, 1)
        confidence, outcome = p.max(1), (p.argmax(1) == y.argmax(1)).astype(float)
    else:  # binary and multilabel: every probability against whether the class (tag) is present
        p = np.clip(p.astype(np.float64), 0, 1)
        confidence, outcome = p.ravel(), (y.ravel() >= 0.5).astype(float)
    observed, mean_confidence = calibration_curve(outcome, confidence, n_bins=n_bins, strategy="uniform")
    edges = np.linspace(0, 1, n_bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], confidence), minlength=n_bins)
    filled = np.flatnonzero(counts)
    table = pd.DataFrame({"bin": filled, "lower": edges[filled], "upper": edges[filled + 1], "rows": counts[filled],
                          "confidence": mean_confidence, "observed": observed})
    table["gap"] = table["observed"] - table["confidence"]
    ece = float((table["rows"] / len(confidence) * table["gap"].abs()).sum())
    return table, ece


def class_counts(y: np.ndarray) -> np.ndarray:
    """Rows per class of a 0/1 matrix: column sums; binary (one column, the positive class): [negative, positive]."""
    if isinstance(y, ClassTargets):
        return y.sum(0).astype(np.int64)
    present = np.asarray(y) >= 0.5
    if present.shape[1] == 1:
        return np.array([(~present[:, 0]).sum(), present[:, 0].sum()])
    return present.sum(0)


def class_distribution(y: np.ndarray, folds: np.ndarray, test_p: np.ndarray, comp) -> pd.DataFrame:
    """Rows per class (multilabel: per tag) in train, in each validation fold, and among the test predictions."""
    table = {"class": list(comp.classes), "train": class_counts(y)}
    for k in range(int(folds.max()) + 1):
        table[f"fold_{k}"] = class_counts(y[folds == k])
    table["test_predicted"] = (np.bincount(test_p.argmax(1), minlength=len(comp.classes)) if is_wide(test_p)
                               else class_counts(hard_predictions(test_p, comp.task, comp.tag_threshold)))
    return pd.DataFrame(table)


def describe(row: np.ndarray, names: list, task: str, threshold: float) -> str:
    """A target or prediction row in words: the class, or the present tags."""
    if isinstance(row, TopProbs):  # one row of kept classes (predict.keep_top)
        return names[int(row.argmax()[0])]
    if task == "multiclass":
        return names[int(np.argmax(row))]
    if task == "binary":
        return names[int(row[0] > threshold)]
    return " ".join(n for n, v in zip(names, row) if v > threshold) or "(none)"


def worst_mistakes(y: np.ndarray, p: np.ndarray, folds: np.ndarray, ids: list, comp, n: int = 24) -> pd.DataFrame:
    """The n wrong OOF rows the model was surest of. Confidence: the probability of the predicted class
    (multiclass); of the wrong decision (binary: p or 1 - p; multilabel: its most confident wrong tag)."""
    task, threshold = comp.task, comp.tag_threshold
    if task == "multiclass":
        wrong = p.argmax(1) != y.argmax(1)
        confidence = p.max(1)
    else:
        hard, present = hard_predictions(p, task, threshold), y >= 0.5
        decided = np.where(hard == 1, p, 1 - p)  # the probability behind each 0/1 decision
        wrong_cells = hard != present
        wrong = wrong_cells.any(1)
        confidence = np.where(wrong_cells, decided, 0).max(1)
    rows = np.flatnonzero(wrong)
    rows = rows[np.argsort(-confidence[rows], kind="stable")][:n]
    names = list(comp.classes)
    return pd.DataFrame({"row": rows, "id": [ids[i] for i in rows], "fold": folds[rows].astype(int),
                         "true": [describe(y[i], names, task, 0.5) for i in rows],  # targets are 0/1
                         "predicted": [describe(p[i], names, task, threshold) for i in rows],
                         "confidence": confidence[rows].astype(np.float64)})


def fold_table(experiment, y: np.ndarray, comp) -> pd.DataFrame:
    """Per fold: validation rows, OOF CV (the competition metric), epochs run and training seconds."""
    preds = experiment.preds
    scores = fold_scores(comp, y, preds.oof, preds.folds)
    return pd.DataFrame({"fold": range(len(scores)), "rows": np.bincount(preds.folds, minlength=len(scores)),
                         comp.metric: scores, "epochs": [len(log) for log in experiment.logs],
                         "train_s": [float(log["seconds"].sum()) for log in experiment.logs]})
