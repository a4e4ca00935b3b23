"""Blends of (N, K) prediction matrices, and blend weights fitted fold-honestly. scipy is imported where it is
used (start-up time of the stages that only read artifacts)."""
from dataclasses import dataclass

import numpy as np

from ..errors import PipelineError
from ..metrics import EPS, HIGHER_IS_BETTER, comp_score
from .fit import LevelFit
from ..wide import TopProbs, is_wide, mean_top, refuse_dense

BLENDS = ("mean", "rank", "geometric", "weighted")
WIDE_BLENDS = ("mean",)  # what TopProbs (predict.keep_top) blend by: the mean on the union of kept classes


def _checked(preds) -> list[np.ndarray]:
    """The inputs as arrays, after checking that every one has the same 2-D shape."""
    if len(preds) == 0:
        raise PipelineError("blend: no predictions to blend")
    arrays = [np.asarray(p) for p in preds]
    if arrays[0].ndim != 2 or any(a.shape != arrays[0].shape for a in arrays):
        raise PipelineError(f"blend: inputs must share one (N, K) shape, got {[a.shape for a in arrays]}")
    return arrays


def _stack(preds) -> np.ndarray:
    """(n_inputs, N, K). float32 inputs (as stored) stay float32: at 100k rows x 1,000 classes float64 copies
    would double the memory and the time."""
    arrays = _checked(preds)
    return np.stack(arrays).astype(np.result_type(*arrays, np.float32), copy=False)


def _rows_to_one(p: np.ndarray) -> np.ndarray:
    return p / p.sum(1, keepdims=True)


def mean_blend(preds) -> np.ndarray:
    return _stack(preds).mean(0)


def geometric_blend(preds, task: str) -> np.ndarray:
    """exp(mean(log p)): an input that is confidently low pulls the blend down more than in the mean."""
    out = np.exp(np.log(np.clip(_stack(preds), 1e-7, 1)).mean(0))
    return _rows_to_one(out) if task == "multiclass" else out


def rank_blend(preds, task: str) -> np.ndarray:
    """Mean over inputs of each column's ranks / N, in (0, 1]. Meant for ranking metrics (ROC AUC): it ignores
    calibration, so its values are not probabilities (multiclass rows are only renormalised to sum 1)."""
    from scipy.stats import rankdata

    arrays = _checked(preds)
    # ranked column by column on a contiguous transposed copy: ~1.6x faster than rankdata(axis=0) on the stack
    out = sum(rankdata(np.ascontiguousarray(a.T), axis=1).T / len(a) for a in arrays) / len(arrays)
    return _rows_to_one(out) if task == "multiclass" else out


def weighted_blend(preds, weights) -> np.ndarray:
    stacked, w = _stack(preds), np.asarray(weights, np.float64)
    if w.shape != (len(stacked),):
        raise PipelineError(f"blend: {len(w)} weights for {len(stacked)} inputs")
    return np.tensordot(w, stacked, axes=1)


def blend(method: str, preds, task: str, weights=None) -> np.ndarray:
    if is_wide(*preds):  # predict.keep_top: each row's best classes; a mean is all they support
        if method not in WIDE_BLENDS or not all(isinstance(p, TopProbs) for p in preds):
            refuse_dense(f"blend {method!r}")
        return mean_top(list(preds), weights)
    blends = {"mean": lambda: mean_blend(preds), "rank": lambda: rank_blend(preds, task),
              "geometric": lambda: geometric_blend(preds, task), "weighted": lambda: weighted_blend(preds, weights)}
    if method not in blends:
        raise PipelineError(f"blend: unknown method {method!r}, expected one of {BLENDS}")
    if method == "weighted" and weights is None:
        raise PipelineError("blend: method weighted needs weights")
    return blends[method]()


def _log_loss_and_grad(w, stacked, y, task):
    """metrics.score('log_loss') of the weighted blend (multiclass: CE of renormalised rows; else mean BCE) and
    its gradient in w, so SLSQP needs no finite differences."""
    q = np.tensordot(w, stacked, axes=1)
    if task == "multiclass":
        rows, idx = np.arange(len(y)), y.argmax(1)
        q = np.clip(q, EPS, 1)
        qc, total = q[rows, idx], q.sum(1)
        loss = -np.mean(np.log(qc / total))
        grad = -(stacked[:, rows, idx] / qc - stacked.sum(2) / total).mean(1)
        return loss, grad
    q = np.clip(q, EPS, 1 - EPS)
    loss = -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))
    dq = -(y / q - (1 - y) / (1 - q)) / y.size
    return loss, (stacked * dq).sum((1, 2))


def _squared_error_and_grad(w, stacked, y, task):
    """A regression's smooth objective: the mean squared error of the weighted blend on the scaled target (log loss
    would treat the values as probabilities), and its gradient in w."""
    err = np.tensordot(w, stacked, axes=1) - y
    return np.mean(err ** 2), 2 * (stacked * err).sum((1, 2)) / y.size


def fit_weights(preds, y, comp, objective: str = "log_loss", seed: int = 0) -> np.ndarray:
    """Blend weights >= 0 summing to 1, fitted on these rows. objective 'log_loss': SLSQP from equal weights
    (smooth, with its gradient; a regression: on the squared error instead). 'metric': comp's metric by
    Nelder-Mead over softmax(z) (derivative-free: AUC and accuracy are piecewise constant), from equal weights and
    two random starts drawn with `seed`, since a piecewise-constant objective can trap a simplex on a plateau."""
    from scipy.optimize import minimize
    from scipy.special import softmax

    stacked, y = _stack(preds), np.asarray(y, np.float64)
    n = len(stacked)
    if y.shape != stacked.shape[1:]:
        raise PipelineError(f"fit_weights: targets {y.shape} differ from predictions {stacked.shape[1:]}")
    if n == 1:
        return np.ones(1)
    equal = np.full(n, 1.0 / n)
    if objective == "log_loss":
        smooth = _squared_error_and_grad if comp.task == "regression" else _log_loss_and_grad
        res = minimize(smooth, equal, args=(stacked, y, comp.task), jac=True, method="SLSQP",
                       bounds=[(0.0, 1.0)] * n, options={"ftol": 1e-10, "maxiter": 500},
                       constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones_like(w)}])
        w = np.clip(res.x, 0, None)
        return w / w.sum() if w.sum() > 0 else equal
    if objective != "metric":
        raise PipelineError(f"fit_weights: unknown objective {objective!r}, expected log_loss or metric")
    sign = -1.0 if HIGHER_IS_BETTER[comp.metric] else 1.0

    def loss(z):
        value = comp_score(comp, y, np.tensordot(softmax(z), stacked, axes=1))
        return np.inf if np.isnan(value) else sign * value  # undefined (e.g. one-class AUC) is never chosen

    rng = np.random.default_rng(seed)
    best = None
    for start in [np.zeros(n), *rng.normal(0, 1, (2, n))]:
        simplex = np.vstack([start, start + np.eye(n)])  # unit steps: scipy's default 5% of 0 is no step at all
        res = minimize(loss, start, method="Nelder-Mead",
                       options={"initial_simplex": simplex, "xatol": 1e-3, "fatol": 1e-9, "maxiter": 200 * n})
        if best is None or res.fun < best.fun:  # strict: ties keep the equal-weights start
            best = res
    return softmax(best.x).astype(np.float64)


@dataclass(frozen=True)
class BlendModel:
    """A fitted blend, applied to new test predictions as blend_cv applied it to the stored ones: `method`, and
    for `weighted` the weights of the test blend (the mean of the fold weights). Nothing else is fitted (rank
    ranks over the rows it is given)."""
    method: str
    task: str
    weights: tuple | None = None

    def predict(self, tests, meta=None) -> np.ndarray:
        """tests: the level-1 test predictions in the fitted order; meta (image features) is not used."""
        return blend(self.method, tests, self.task, None if self.weights is None else np.asarray(self.weights))


def blend_cv(method: str, oofs, tests, y, folds, comp, objective: str = "log_loss", seed: int = 0) -> LevelFit:
    """The OOF and test blends, fitted weights and the BlendModel that made the test blend. Only `weighted` fits:
    fold k's OOF rows are blended with weights fitted on the other folds (an honest OOF score), the test blend
    with the mean of those fold weights."""
    if len(oofs) != len(tests):
        raise PipelineError(f"blend: {len(oofs)} OOF inputs but {len(tests)} test inputs")
    if method != "weighted" or is_wide(*oofs):  # wide: `weighted` refused by blend(), with one line
        model = BlendModel(method, comp.task)
        return LevelFit(blend(method, oofs, comp.task), model.predict(tests), model=model)
    oof_stack, y, folds = _stack(oofs), np.asarray(y, np.float64), np.asarray(folds)
    if folds.shape != (oof_stack.shape[1],):
        raise PipelineError(f"blend: folds {folds.shape} do not match {oof_stack.shape[1]} OOF rows")
    if len(np.unique(folds)) < 2:
        raise PipelineError("blend: weighted needs at least 2 folds")
    out, per_fold = np.zeros(oof_stack.shape[1:]), []
    for k in np.unique(folds):
        train, held = folds != k, folds == k
        w = fit_weights(list(oof_stack[:, train]), y[train], comp, objective, seed)
        out[held] = weighted_blend(list(oof_stack[:, held]), w)
        per_fold.append(w)
    mean_w = np.mean(per_fold, 0)
    info = {"weights_per_fold": [w.tolist() for w in per_fold], "weights": mean_w.tolist()}
    model = BlendModel(method, comp.task, tuple(mean_w.tolist()))
    return LevelFit(out, model.predict(tests), info, model)
