"""Many classes (herbarium-2022-fgvc9: 840k train rows x 15,501 classes): targets held as class indices and
predictions as each row's best classes, so no stage holds an (N, K) matrix.

`predict.keep_top` decides (`keep_top`): 0 keeps every class's probability (dense matrices, as for any competition
of a few thousand classes); k > 0 keeps each row's k most probable classes and their probabilities. With k > 0:

- `ClassTargets` stands for the (N, K) one-hot targets. A single row reads as its one-hot vector (what a training
  batch needs, B x K); a set of rows is again a ClassTargets. It never becomes an (N, K) array: `np.asarray` on it
  raises, so a stage that would build one fails in the tests instead of at herbarium's size.
- `TopProbs` stands for an (N, K) probability matrix: (N, k) class indices, best first, and their probabilities.
  The mass outside them is `residual` (rows of a softmax sum to 1). It never becomes dense either.
- Metrics read class indices (accuracy, F1, MAP@k from the kept ranking) or the true class's probability (log
  loss: the residual spread evenly over the classes not kept when the true class is not among them).
- Blends: `mean` only, computed on the union of the inputs' kept classes (a class an input did not keep counts 0
  from it), then cut back to k. Rank and geometric blends and the meta-models need every class's probability.

Memory at herbarium's size with k = 20: targets 6.7 MB (int64), each prediction matrix 134 MB (int32 + float32)."""
from dataclasses import dataclass

import numpy as np

from .errors import PipelineError

AUTO_TOP = 20              # classes kept per row when `auto` decides to keep the best only
WIDE_CELLS = 1_000_000_000  # `auto` keeps the best classes above train rows x classes = 1e9 (4 GB in float32)
BLOCK_ROWS = 65_536        # rows per block when blending: bounds the union's temporary arrays


def keep_top(comp, predict_cfg, n_rows: int) -> int:
    """The number of classes each prediction keeps: 0 = all of them (dense). `auto`: AUTO_TOP for a multiclass
    competition whose train rows x classes exceed WIDE_CELLS, else 0."""
    value = predict_cfg.keep_top
    if value == "auto":
        return AUTO_TOP if comp.task == "multiclass" and n_rows * len(comp.classes) > WIDE_CELLS else 0
    if value and comp.task != "multiclass":
        raise PipelineError(f"predict.keep_top={value}: keeping each row's best classes is for multiclass "
                            f"competitions (competition.task is {comp.task}); set it to 0 or auto")
    if value and value >= len(comp.classes):
        raise PipelineError(f"predict.keep_top={value}: not fewer than the {len(comp.classes)} classes; set 0 to "
                            f"keep every class")
    return int(value)


def refuse_dense(what: str):
    raise PipelineError(f"{what} needs every class's probability, and predict.keep_top keeps each row's best "
                        f"classes only: set predict.keep_top=0 (dense (rows x classes) matrices)")


class ClassTargets:
    """One-hot (N, K) targets held as N class indices (see the module text)."""
    ndim, dtype = 2, np.dtype(np.float32)

    def __init__(self, labels, n_classes: int):
        self.labels, self.n_classes = np.asarray(labels, np.int64), int(n_classes)

    @property
    def shape(self):
        return (len(self.labels), self.n_classes)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):  # one row: its one-hot vector (a training batch's target)
            row = np.zeros(self.n_classes, np.float32)
            row[self.labels[key]] = 1
            return row
        return ClassTargets(self.labels[key], self.n_classes)

    def __array__(self, dtype=None, copy=None):
        raise PipelineError(f"internal: {self.shape} one-hot targets made dense with predict.keep_top on")

    def argmax(self, axis=1):
        return self.labels

    def sum(self, axis=0):
        """Rows per class: the column sums of the one-hot."""
        if axis != 0:
            raise PipelineError("internal: ClassTargets sums over rows only")
        return np.bincount(self.labels, minlength=self.n_classes).astype(np.float64)

    @staticmethod
    def concat(parts: list) -> "ClassTargets":
        return ClassTargets(np.concatenate([p.labels for p in parts]), parts[0].n_classes)


@dataclass
class TopProbs:
    """An (N, K) probability matrix as each row's k best classes (see the module text)."""
    classes: np.ndarray   # (N, k) int32 class indices, best first
    probs: np.ndarray     # (N, k) float32, non-increasing along a row
    n_classes: int
    ndim = 2

    @classmethod
    def empty(cls, n: int, k: int, n_classes: int) -> "TopProbs":
        """Rows still to be filled: probabilities NaN (`missing` finds them)."""
        return cls(np.zeros((n, k), np.int32), np.full((n, k), np.nan, np.float32), n_classes)

    @classmethod
    def from_dense(cls, p, k: int) -> "TopProbs":
        """The k best of each row of an (N, K) matrix (a batch's, or a small one in tests)."""
        from .topk import top_k_classes

        p = np.asarray(p)
        best = top_k_classes(p, k).astype(np.int32)
        return cls(best, np.take_along_axis(p, best, 1).astype(np.float32), p.shape[1])

    @staticmethod
    def concat(parts: list) -> "TopProbs":
        return TopProbs(np.concatenate([p.classes for p in parts]), np.concatenate([p.probs for p in parts]),
                        parts[0].n_classes)

    @property
    def shape(self):
        return (len(self.classes), self.n_classes)

    @property
    def top(self) -> int:
        return self.classes.shape[1]

    @property
    def dtype(self):
        return self.probs.dtype

    def __len__(self):
        return len(self.classes)

    def __getitem__(self, rows) -> "TopProbs":
        if isinstance(rows, (int, np.integer)):
            rows = [rows]
        return TopProbs(self.classes[rows], self.probs[rows], self.n_classes)

    def __setitem__(self, rows, value: "TopProbs"):
        self.classes[rows], self.probs[rows] = value.classes, value.probs

    def __array__(self, dtype=None, copy=None):
        raise PipelineError(f"internal: {self.shape} probabilities made dense with predict.keep_top on")

    def astype(self, dtype, copy=True) -> "TopProbs":
        return self  # float32 as stored: the metrics upcast what they read

    def missing(self) -> np.ndarray:
        """Rows not predicted (NaN probabilities)."""
        return ~np.isfinite(self.probs).all(1)

    def argmax(self, axis=1) -> np.ndarray:
        return self.classes[:, 0].astype(np.int64)

    def max(self, axis=1) -> np.ndarray:
        return self.probs[:, 0].astype(np.float64)

    def residual(self) -> np.ndarray:
        """The probability of the classes not kept, per row (>= 0)."""
        return np.clip(1.0 - self.probs.sum(1, dtype=np.float64), 0.0, 1.0)

    def prob_of(self, labels) -> np.ndarray:
        """Each row's probability of class labels[i]: kept, or the residual spread evenly over the classes not
        kept."""
        labels = np.asarray(labels)
        hit = self.classes == labels[:, None]
        kept = np.where(hit, self.probs, 0).sum(1, dtype=np.float64)
        spread = self.residual() / max(self.n_classes - self.top, 1)
        return np.where(hit.any(1), kept, spread)

    def equal(self, other, tol: float) -> bool:
        """The same kept classes, probabilities within tol (a saved level 2 read back)."""
        return (isinstance(other, TopProbs) and self.classes.shape == other.classes.shape
                and np.array_equal(self.classes, other.classes)
                and float(np.abs(self.probs.astype(np.float64) - other.probs).max(initial=0)) <= tol)


def is_wide(*arrays) -> bool:
    return any(isinstance(a, (TopProbs, ClassTargets)) for a in arrays)


def labels_of(y) -> np.ndarray:
    """The true class of each row, from ClassTargets or a one-hot matrix."""
    return y.labels if isinstance(y, ClassTargets) else np.asarray(y).argmax(1)


def mean_top(preds: list, weights=None, k: int | None = None) -> TopProbs:
    """The (weighted) mean of TopProbs on the union of their kept classes, each row cut back to its k best (default
    the inputs' k). Ties: the lower class index first, as top_k_classes."""
    n, n_classes = len(preds[0]), preds[0].n_classes
    if any(len(p) != n or p.n_classes != n_classes for p in preds):
        raise PipelineError(f"blend: inputs must share one (N, K) shape, got {[p.shape for p in preds]}")
    w = np.full(len(preds), 1.0 / len(preds)) if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    k = k or max(p.top for p in preds)
    out = TopProbs(np.zeros((n, k), np.int32), np.zeros((n, k), np.float32), n_classes)
    for start in range(0, n, BLOCK_ROWS):
        block = slice(start, min(start + BLOCK_ROWS, n))
        rows = np.arange(block.stop - block.start)
        keys = np.concatenate([rows[:, None] * n_classes + p.classes[block] for p in preds], 1).ravel()
        mass = np.concatenate([wi * p.probs[block].astype(np.float64) for wi, p in zip(w, preds)], 1).ravel()
        unique, inverse = np.unique(keys, return_inverse=True)
        total = np.bincount(inverse, weights=mass)
        row, cls = unique // n_classes, unique % n_classes
        order = np.lexsort((cls, -total, row))  # by row, then most probable, then the lower class
        row, cls, total = row[order], cls[order], total[order]
        first = np.searchsorted(row, rows)
        rank = np.arange(len(row)) - first[row]
        keep = rank < k
        out.classes[start + row[keep], rank[keep]] = cls[keep]
        out.probs[start + row[keep], rank[keep]] = total[keep]
    return out


def wide_score(metric: str, y, p, task: str, top_k: int = 5) -> float:
    """metrics.score's log loss and MAP@k for ClassTargets / TopProbs (multiclass); the label metrics (accuracy, F1,
    qwk) are metrics.score's own, from the argmax; the others need every class."""
    from .metrics import LOG_LOSS_CLIP
    from .topk import mean_average_precision

    if task != "multiclass":
        raise PipelineError(f"internal: predict.keep_top with a {task} task")
    true = labels_of(y)
    if not isinstance(p, TopProbs):
        p = TopProbs.from_dense(p, min(top_k, p.shape[1]))
    if metric == "log_loss":
        return float(-np.log(np.clip(p.prob_of(true), LOG_LOSS_CLIP, 1 - LOG_LOSS_CLIP)).mean())
    if metric == "map_at_k":
        if p.top < top_k:
            raise PipelineError(f"competition.metric map_at_k ranks {top_k} classes but predict.keep_top keeps "
                                f"{p.top}: set predict.keep_top to at least {top_k}")
        return mean_average_precision(true, p.classes[:, :top_k])
    refuse_dense(f"competition.metric {metric}")
