"""Level-2 meta-models (XGBoost, logistic regression) on the level-1 OOF, trained on the same folds: fold k's
meta-prediction comes from a model that never saw fold k's labels (early stopping included), so the stacked OOF
score is as honest as the level-1 one. The test prediction is the mean of the k fold models'."""
import numpy as np

from ..config import TASKS
from ..errors import PipelineError
from .fit import LevelFit

# Level-2 data is small: one thread costs little and keeps XGBoost bit-identical on any machine (extra.n_jobs wins).
XGB_THREADS = 1


def _prevalence(labels, n_out, n_rows_list):
    """The training part's class frequencies for every row: what a model would learn from one class only."""
    freq = np.bincount(labels, minlength=n_out) / len(labels)
    return [np.tile(freq, (n, 1)) for n in n_rows_list]


def _place(proba, classes, n_rows, n_out):
    """Probabilities of the classes a model saw into their columns of n_out; unseen classes get 0."""
    out = np.zeros((n_rows, n_out))
    out[:, classes] = proba
    return out


def _xgb_params(cfg_stack):
    x = cfg_stack.xgboost
    params = dict(n_estimators=x.n_estimators, learning_rate=x.learning_rate, max_depth=x.max_depth,
                  min_child_weight=x.min_child_weight, subsample=x.subsample, colsample_bytree=x.colsample_bytree,
                  reg_lambda=x.reg_lambda, reg_alpha=x.reg_alpha, tree_method="hist", random_state=cfg_stack.seed,
                  n_jobs=XGB_THREADS, verbosity=0)
    params.update(x.extra)
    early = params.pop("early_stopping_rounds", x.early_stopping_rounds)  # only ever used with an inner fold
    return params, early


def _xgb_unit(X, labels, folds, k, inner, preds_X, n_out, params, early):
    """One XGBClassifier (more than 2 classes: multi:softprob, chosen by XGBClassifier) for fold k: fitted on
    folds != k; with early stopping, its number of trees comes from a fit on folds not in {k, inner} watched on
    fold `inner`. Returns ([probabilities (n, n_out) per preds_X], best_iteration or None)."""
    import xgboost  # here: stages that only read artifacts start without it

    train = folds != k
    classes = np.unique(labels[train])
    if len(classes) < 2:
        return _prevalence(labels[train], n_out, [len(x) for x in preds_X]), None
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
    return [_place(model.predict_proba(x), classes, len(x), n_out) for x in preds_X], best


def _logreg_unit(X, labels, folds, k, preds_X, n_out, c):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = folds != k
    classes = np.unique(labels[train])
    if len(classes) < 2:
        return _prevalence(labels[train], n_out, [len(x) for x in preds_X])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
    model.fit(X[train], labels[train])  # lbfgs: multinomial when more than 2 classes
    return [_place(model.predict_proba(x), model.classes_, len(x), n_out) for x in preds_X]


def stack_cv(method: str, oof_features, test_features, y, folds, task: str, cfg_stack,
             n_prob_features=None) -> LevelFit:
    """OOF predictions (N, K), test predictions (M, K) and info of a meta-model. oof_features (N, F) / test_features (M, F): level-1 OOF/test
    predictions (and any meta features) side by side; the first n_prob_features columns (default all) are
    probabilities, which logreg sees as logits. info['best_iterations'][fold][model]: XGBoost trees kept - 1 per
    fold and model (one model, or one per class for multilabel); None where nothing was early-stopped."""
    if method not in ("xgboost", "logreg"):
        raise PipelineError(f"stack: unknown meta-model {method!r}, expected xgboost or logreg")
    if task not in TASKS:
        raise PipelineError(f"stack: unknown task {task!r}")
    X, T = np.asarray(oof_features, np.float64), np.asarray(test_features, np.float64)
    y, folds = np.asarray(y, np.float64), np.asarray(folds)
    if X.ndim != 2 or T.ndim != 2 or X.shape[1] != T.shape[1]:
        raise PipelineError(f"stack: OOF features {X.shape} and test features {T.shape} must be (N, F) and (M, F)")
    if y.ndim != 2 or len(y) != len(X) or folds.shape != (len(X),):
        raise PipelineError(f"stack: {len(X)} OOF rows, targets {y.shape} and folds {folds.shape} differ")
    fold_ids = np.unique(folds)
    if len(fold_ids) < 2:
        raise PipelineError("stack: needs at least 2 folds")
    if method == "logreg":
        from scipy.special import logit

        n_prob = X.shape[1] if n_prob_features is None else int(n_prob_features)
        if not 0 <= n_prob <= X.shape[1]:
            raise PipelineError(f"stack: n_prob_features={n_prob_features} outside 0..{X.shape[1]}")
        X, T = (np.hstack([logit(np.clip(a[:, :n_prob], 1e-6, 1 - 1e-6)), a[:, n_prob:]]) for a in (X, T))
    # one unit per model: (labels, n_out, output column or None for all columns)
    if task == "multiclass":
        units = [(y.argmax(1), y.shape[1], None)]
    else:
        units = [(y[:, c].astype(np.int64), 2, c) for c in range(y.shape[1])]
    params, early = _xgb_params(cfg_stack) if method == "xgboost" else (None, None)
    oof, test, best_per_fold = np.zeros(y.shape), np.zeros((len(T), y.shape[1])), []
    for i, k in enumerate(fold_ids):
        held = folds == k
        # the inner early-stopping fold: the next fold after k; none with two folds (nothing left to fit on,
        # so the full n_estimators is used)
        inner = fold_ids[(i + 1) % len(fold_ids)] if len(fold_ids) > 2 else None
        bests = []
        for labels, n_out, col in units:
            if method == "xgboost":
                (p_held, p_test), best = _xgb_unit(X, labels, folds, k, inner, [X[held], T], n_out, params, early)
                bests.append(best)
            else:
                p_held, p_test = _logreg_unit(X, labels, folds, k, [X[held], T], n_out, cfg_stack.logreg_c)
            if col is None:
                oof[held] = p_held
                test += p_test / len(fold_ids)
            else:  # a binary model per column: P(column is 1)
                oof[held, col] = p_held[:, 1]
                test[:, col] += p_test[:, 1] / len(fold_ids)
        best_per_fold.append(bests)
    return LevelFit(oof, test, {"best_iterations": best_per_fold} if method == "xgboost" else {})
