"""Level-2 meta-models (XGBoost, logistic regression; a regression's XGBoost and Ridge regressors: regress.py) on
the level-1 OOF, trained on the same folds: fold k's meta-prediction comes from a model that never saw fold k's
labels (early stopping included), so the stacked OOF score is as honest as the level-1 one. The test prediction is
the mean of the k fold models'."""
from dataclasses import dataclass

import numpy as np

from ..config.competition import TASKS
from ..errors import PipelineError
from .fit import LevelFit
from .regress import check_method, regressor_unit

# Level-2 data is small: one thread costs little and keeps XGBoost bit-identical on any machine (extra.n_jobs wins).
XGB_THREADS = 1


class PrevalenceUnit:
    """What a model would learn from a training part with one class only: its class frequencies, for every row."""

    def __init__(self, freq):
        self.freq = np.asarray(freq, np.float64)

    @classmethod
    def of(cls, labels, n_out: int) -> "PrevalenceUnit":
        return cls(np.bincount(labels, minlength=n_out) / len(labels))

    def predict(self, x) -> np.ndarray:
        return np.tile(self.freq, (len(x), 1))


class FittedUnit:
    """One fitted classifier (sklearn's predict_proba) and the classes of n_out it saw, in its column order."""

    def __init__(self, model, classes, n_out: int):
        self.model, self.classes, self.n_out = model, np.asarray(classes), n_out

    def predict(self, x) -> np.ndarray:
        """Probabilities of the classes it saw in their columns of n_out; unseen classes get 0."""
        out = np.zeros((len(x), self.n_out))
        out[:, self.classes] = self.model.predict_proba(x)
        return out


@dataclass
class MetaModel:
    """A fitted meta-model: per fold, one unit per model (multiclass: one; else one per output column), each
    trained on the other folds. The test prediction is the mean of the folds' units, summed in fold order, so a
    saved MetaModel gives the stack's test predictions bit for bit."""
    method: str
    task: str
    n_outputs: int
    n_features: int
    n_prob_features: int
    folds: list  # [fold][unit]: FittedUnit or PrevalenceUnit

    def features(self, x) -> np.ndarray:
        """Raw features (level-1 probabilities first, then meta features) as the units see them: logreg sees the
        probabilities as logits."""
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise PipelineError(f"stack: features {x.shape}, the meta-model was fitted on {self.n_features} columns")
        return _logit_probs(x, self.n_prob_features) if self.method == "logreg" else x

    def predict_features(self, test_features) -> np.ndarray:
        x = self.features(test_features)
        test = np.zeros((len(x), self.n_outputs))
        for units in self.folds:
            for col, unit in zip(_columns(self.task, self.n_outputs), units):
                if col is None:
                    test += unit.predict(x) / len(self.folds)
                else:
                    test[:, col] += _column(unit.predict(x), self.task) / len(self.folds)
        return test

    def predict(self, tests, meta=None) -> np.ndarray:
        """tests: the level-1 test predictions in the fitted order; meta: their image features (stack.meta_features)
        when the model was fitted with them."""
        return self.predict_features(level_features(tests, meta))


def level_features(preds, meta=None) -> np.ndarray:
    """A meta-model's features: the level-1 predictions side by side, then the meta features, if any."""
    return np.hstack([*preds, *([] if meta is None else [meta])])


def _logit_probs(x, n_prob: int) -> np.ndarray:
    from scipy.special import logit

    return np.hstack([logit(np.clip(x[:, :n_prob], 1e-6, 1 - 1e-6)), x[:, n_prob:]])


def _column(p: np.ndarray, task: str) -> np.ndarray:
    """What a per-column unit predicts for its column: a regressor's value, a binary classifier's P(column is 1)."""
    return p if task == "regression" else p[:, 1]


def _columns(task: str, n_outputs: int) -> list:
    """The output column of each unit: None (all columns) for the one multiclass model, else one per column."""
    return [None] if task == "multiclass" else list(range(n_outputs))


def _xgb_params(cfg_stack):
    x = cfg_stack.xgboost
    params = dict(n_estimators=x.n_estimators, learning_rate=x.learning_rate, max_depth=x.max_depth,
                  min_child_weight=x.min_child_weight, subsample=x.subsample, colsample_bytree=x.colsample_bytree,
                  reg_lambda=x.reg_lambda, reg_alpha=x.reg_alpha, tree_method="hist", random_state=cfg_stack.seed,
                  n_jobs=XGB_THREADS, verbosity=0)
    params.update(x.extra)
    early = params.pop("early_stopping_rounds", x.early_stopping_rounds)  # only ever used with an inner fold
    return params, early


def _xgb_unit(X, labels, folds, k, inner, n_out, params, early):
    """One XGBClassifier (more than 2 classes: multi:softprob, chosen by XGBClassifier) for fold k: fitted on
    folds != k; with early stopping, its number of trees comes from a fit on folds not in {k, inner} watched on
    fold `inner`. Returns (the fitted unit, best_iteration or None)."""
    import xgboost  # here: stages that only read artifacts start without it

    train = folds != k
    classes = np.unique(labels[train])
    if len(classes) < 2:
        return PrevalenceUnit.of(labels[train], n_out), None
    best = None
    if early is not None and inner is not None:
        fit_rows, watch = train & (folds != inner), folds == inner
        inner_classes = np.unique(labels[fit_rows])
        watch &= np.isin(labels, inner_classes)  # a class the inner model never saw cannot be scored by it
        if len(inner_classes) >= 2 and watch.any():
            model = xgboost.XGBClassifier(**params, early_stopping_rounds=early)
            model.fit(X[fit_rows], np.searchsorted(inner_classes, labels[fit_rows]),
                      eval_set=[(X[watch], np.searchsorted(inner_classes, labels[watch]))], verbose=False)
            best = int(model.best_iteration)
    final = dict(params, n_estimators=best + 1) if best is not None else params
    model = xgboost.XGBClassifier(**final)
    model.fit(X[train], np.searchsorted(classes, labels[train]))
    return FittedUnit(model, classes, n_out), best


def _logreg_unit(X, labels, folds, k, n_out, c):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = folds != k
    classes = np.unique(labels[train])
    if len(classes) < 2:
        return PrevalenceUnit.of(labels[train], n_out)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
    model.fit(X[train], labels[train])  # lbfgs: multinomial when more than 2 classes
    return FittedUnit(model, model.classes_, n_out)


def _check_oof(X, y, folds):
    if X.ndim != 2:
        raise PipelineError(f"stack: OOF features {X.shape} must be (N, F)")
    if y.ndim != 2 or len(y) != len(X) or folds.shape != (len(X),):
        raise PipelineError(f"stack: {len(X)} OOF rows, targets {y.shape} and folds {folds.shape} differ")
    if len(np.unique(folds)) < 2:
        raise PipelineError("stack: needs at least 2 folds")


def fit_meta(method: str, oof_features, y, folds, task: str, cfg_stack, n_prob_features=None):
    """(MetaModel, OOF predictions (N, K), XGBoost best iterations [fold][model] or None) of a meta-model fitted
    fold by fold on oof_features (N, F); the arguments as in stack_cv."""
    if method not in ("xgboost", "logreg", "ridge"):
        raise PipelineError(f"stack: unknown meta-model {method!r}, expected xgboost, logreg or ridge")
    if task not in TASKS:
        raise PipelineError(f"stack: unknown task {task!r}")
    check_method(method, task)
    X, y, folds = np.asarray(oof_features, np.float64), np.asarray(y, np.float64), np.asarray(folds)
    _check_oof(X, y, folds)
    n_prob = X.shape[1] if n_prob_features is None else int(n_prob_features)
    if not 0 <= n_prob <= X.shape[1]:
        raise PipelineError(f"stack: n_prob_features={n_prob_features} outside 0..{X.shape[1]}")
    model = MetaModel(method, task, y.shape[1], X.shape[1], n_prob, [])
    X = model.features(X)
    # one unit per model: (labels, n_out, output column or None for all columns)
    labels = ([y.argmax(1)] if task == "multiclass" else  # a regression's targets: the scaled values
              [y[:, c] if task == "regression" else y[:, c].astype(np.int64) for c in range(y.shape[1])])
    units = [(lab, y.shape[1] if col is None else 2, col) for lab, col in zip(labels, _columns(task, y.shape[1]))]
    params, early = _xgb_params(cfg_stack) if method == "xgboost" else (None, None)
    fold_ids = np.unique(folds)
    oof, best_per_fold = np.zeros(y.shape), []
    for i, k in enumerate(fold_ids):
        held = folds == k
        # the inner early-stopping fold: the next fold after k; none with two folds (nothing left to fit on,
        # so the full n_estimators is used)
        inner = fold_ids[(i + 1) % len(fold_ids)] if len(fold_ids) > 2 else None
        fitted, bests = [], []
        for labels, n_out, col in units:
            if task == "regression":
                unit, best = regressor_unit(method, X, labels, folds, k, inner, cfg_stack, params, early)
            elif method == "xgboost":
                unit, best = _xgb_unit(X, labels, folds, k, inner, n_out, params, early)
            else:
                unit, best = _logreg_unit(X, labels, folds, k, n_out, cfg_stack.logreg_c), None
            bests.append(best)
            p_held = unit.predict(X[held])
            if col is None:
                oof[held] = p_held
            else:
                oof[held, col] = _column(p_held, task)
            fitted.append(unit)
        model.folds.append(fitted)
        best_per_fold.append(bests)
    return model, oof, (best_per_fold if method == "xgboost" else None)


def stack_cv(method: str, oof_features, test_features, y, folds, task: str, cfg_stack,
             n_prob_features=None) -> LevelFit:
    """OOF (N, K) and test (M, K) predictions, info and the fitted MetaModel of a meta-model. oof_features (N, F)
    / test_features (M, F): level-1 predictions (and any meta features) side by side, the first n_prob_features
    columns (default all) probabilities. info['best_iterations'][fold][model]: XGBoost trees kept - 1 (None where
    nothing was early-stopped)."""
    X, T = np.asarray(oof_features, np.float64), np.asarray(test_features, np.float64)
    if X.ndim != 2 or T.ndim != 2 or X.shape[1] != T.shape[1]:
        raise PipelineError(f"stack: OOF features {X.shape} and test features {T.shape} must be (N, F) and (M, F)")
    model, oof, bests = fit_meta(method, X, y, folds, task, cfg_stack, n_prob_features)
    return LevelFit(oof, model.predict_features(T), {"best_iterations": bests} if bests is not None else {}, model)
