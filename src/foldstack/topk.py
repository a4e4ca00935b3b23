"""Top-k retrieval (whale-categorization-playground, humpback-whale-identification): each test row is submitted as
its k best classes, best first, scored by MAP@k. With one true label per row, as the graders compute it: the
precision at the rank of the first correct class (1 / rank), 0 when it is not among the k; the mean over rows.

An unknown class (`competition.unknown_class`: whale's `new_whale`) is a class like the others unless the stack
searched a probability threshold for it on OOF (stored in the stack's thresholds.json at its class's entry): then it
is left out of the ranking and inserted at the first rank whose class's probability is below the threshold.

Rankings are computed a block of rows at a time: never an (N, K) float64 or index copy (whale: 25k rows x 4k)."""
import numpy as np

from .errors import PipelineError

BLOCK_ROWS = 2048


def top_k_classes(p: np.ndarray, k: int, exclude: int | None = None) -> np.ndarray:
    """(N, min(k, K)) class indices, best first (equal probabilities: the lower class index first, except at the
    k-th place, where argpartition picks). exclude: a class index left out of the ranking."""
    n, width = p.shape
    k = min(k, width - (exclude is not None))
    out = np.empty((n, k), np.int64)
    for start in range(0, n, BLOCK_ROWS):
        block = np.array(p[start:start + BLOCK_ROWS], copy=True)  # a block's copy, in the predictions' dtype
        if exclude is not None:
            block[:, exclude] = -np.inf
        block *= -1
        best = np.sort(np.argpartition(block, k - 1, axis=1)[:, :k], axis=1)  # the k best, by class index
        order = np.argsort(np.take_along_axis(block, best, 1), axis=1, kind="stable")
        out[start:start + len(block)] = np.take_along_axis(best, order, 1)
    return out


def insert_unknown(ranked: np.ndarray, probs: np.ndarray, unknown: int, threshold: float) -> np.ndarray:
    """ranked: (N, k) classes without the unknown one, probs their (N, k) probabilities. The unknown class goes to
    the first rank whose class's probability is below `threshold` (nowhere when none is); k classes come back."""
    n, k = ranked.shape
    below = probs < threshold
    rank = np.where(below.any(1), below.argmax(1), k)
    out = np.empty((n, k + 1), np.int64)
    positions = np.arange(k + 1)[None, :]
    out[positions < rank[:, None]] = ranked[positions[:, :k] < rank[:, None]]
    out[positions > rank[:, None]] = ranked[positions[:, :k] >= rank[:, None]]
    out[np.arange(n), rank] = unknown
    return out[:, :k]


def unknown_index(comp) -> int | None:
    """The index of competition.unknown_class among the classes; None when unset."""
    if comp.unknown_class is None:
        return None
    if comp.unknown_class not in comp.classes:
        raise PipelineError(f"competition.unknown_class {comp.unknown_class!r} is not one of competition.classes "
                            f"(the train labels): it must be a class the model predicts")
    return comp.classes.index(comp.unknown_class)


def unknown_threshold(comp, thresholds) -> float | None:
    """The unknown class's searched threshold: its entry of the per-class `thresholds`; None: none searched."""
    unknown = unknown_index(comp)
    if unknown is None or thresholds is None or np.ndim(thresholds) == 0:
        return None
    return float(np.asarray(thresholds)[unknown])


def ranking(comp, p: np.ndarray, thresholds=None) -> np.ndarray:
    """(N, k) class indices a submission names, best first: the top competition.top_k, with the unknown class
    inserted at its threshold when one was searched."""
    threshold = unknown_threshold(comp, thresholds)
    if threshold is None:
        return top_k_classes(p, comp.top_k)
    unknown = unknown_index(comp)
    ranked = top_k_classes(p, comp.top_k, exclude=unknown)
    return insert_unknown(ranked, np.take_along_axis(p, ranked, 1), unknown, threshold)


def mean_average_precision(true: np.ndarray, ranked: np.ndarray) -> float:
    """MAP@k of one true class index per row against (N, k) ranked class indices: 1 / (rank of the first hit)."""
    hits = ranked == np.asarray(true)[:, None]
    found = hits.any(1)
    return float(np.where(found, 1.0 / (hits.argmax(1) + 1), 0.0).mean()) if len(ranked) else float("nan")


def submitted_map_at_k(y: np.ndarray, ranked_labels: list[list[str]], classes: list[str], k: int) -> float:
    """MAP@k of a submission's rows (each a list of class names, best first; the first k count) against (N, K)
    one-hot targets."""
    index = {c: i for i, c in enumerate(classes)}
    ranked = np.full((len(ranked_labels), k), -1, np.int64)
    for row, labels in enumerate(ranked_labels):
        found = [index.get(label, -1) for label in labels[:k]]
        ranked[row, :len(found)] = found
    return mean_average_precision(y.argmax(1), ranked)  # a one-hot matrix or ClassTargets (wide.py)


def map_at_k(y: np.ndarray, p: np.ndarray, k: int) -> float:
    """MAP@k of (N, K) one-hot targets against (N, K) probabilities, the k best classes ranked."""
    return mean_average_precision(np.asarray(y).argmax(1), top_k_classes(p, k))


def comp_map_at_k(comp, y: np.ndarray, p: np.ndarray, thresholds=None) -> float:
    """The competition's MAP@k: the submission's ranking (unknown class at its threshold, if searched)."""
    return mean_average_precision(np.asarray(y).argmax(1), ranking(comp, p, thresholds))


def search_unknown_threshold(comp, y: np.ndarray, p: np.ndarray) -> np.ndarray | None:
    """Per-class thresholds (the file format of multilabel ones) whose unknown-class entry maximises MAP@k on the
    OOF rows; the other entries are competition.tag_threshold and unused. Candidates: the OOF rows' best known
    class probabilities at every percentile. None: no competition.unknown_class, or no threshold beats ranking
    the unknown class by its own probability (no file is written; the submission ranks it so)."""
    unknown = unknown_index(comp)
    if unknown is None:
        return None
    true = np.asarray(y).argmax(1)
    ranked = top_k_classes(p, comp.top_k, exclude=unknown)
    probs = np.take_along_axis(p, ranked, 1).astype(np.float64)
    best_t, best = None, mean_average_precision(true, top_k_classes(p, comp.top_k))
    for t in np.unique(np.quantile(probs[:, 0], np.linspace(0, 1, 101))):
        score = mean_average_precision(true, insert_unknown(ranked, probs, unknown, t))
        if score > best:  # strict: ties keep the lower threshold
            best_t, best = float(t), score
    if best_t is None:
        return None
    thresholds = np.full(p.shape[1], comp.tag_threshold)
    thresholds[unknown] = best_t
    return thresholds
