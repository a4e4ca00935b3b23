"""Level-2 meta-models of a regression, one per target column: XGBRegressor (`stack.method: xgboost`) and Ridge
(`stack.method: ridge`), on the level-1 values as stored (scaled to [0, 1] by competition.target_range) and any
meta features. Their predictions are clipped to [0, 1], the scaled target's range: the metrics and the submission
unscale them. meta.fit_meta fits them fold by fold exactly as it fits the classifiers. `logreg` stays a classifier:
a regression asks for `ridge` by name rather than getting a different model under a classifier's name."""
import numpy as np

from ..errors import PipelineError


def check_method(method: str, task: str) -> None:
    """One line when the meta-model does not fit the task: ridge regresses, logreg classifies, xgboost does both."""
    if task == "regression" and method == "logreg":
        raise PipelineError("stack.method=logreg classifies; a regression stacks with ridge or xgboost")
    if task != "regression" and method == "ridge":
        raise PipelineError(f"stack.method=ridge is a regressor; a {task} task stacks with logreg or xgboost")


class RegressorUnit:
    """One fitted regressor (sklearn's predict) of one target column."""

    def __init__(self, model):
        self.model = model

    def predict(self, x) -> np.ndarray:
        """(N,) scaled values, clipped to [0, 1]."""
        return np.clip(np.asarray(self.model.predict(x), np.float64), 0.0, 1.0)


class LinearModel:
    """A fitted StandardScaler + Ridge as its arrays: fitted by sklearn, predicting with numpy from the arrays
    persist.py saves, so the OOF, the test prediction and the saved level 2 all come from one computation."""
    ARRAYS = ("mean", "scale", "coef", "intercept")

    def __init__(self, mean, scale, coef, intercept):
        self.mean, self.scale = np.asarray(mean, np.float64), np.asarray(scale, np.float64)
        self.coef, self.intercept = np.asarray(coef, np.float64), np.asarray(intercept, np.float64)

    @classmethod
    def fit(cls, x, target, alpha: float) -> "LinearModel":
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        # standardised first: the penalty then treats a 0-1 level-1 value and a tabular column alike
        pipeline = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(x, target)
        scaler, ridge = (step for _, step in pipeline.steps)
        return cls(scaler.mean_, scaler.scale_, ridge.coef_, ridge.intercept_)

    def predict(self, x) -> np.ndarray:
        return (np.asarray(x, np.float64) - self.mean) / self.scale @ self.coef + self.intercept


def _xgb_regressor(X, target, folds, k, inner, params, early):
    """One XGBRegressor (squared error) for fold k, fitted on folds != k; with early stopping, its number of trees
    comes from a fit on folds not in {k, inner} watched on fold `inner`, as meta._xgb_unit does for a classifier.
    Returns (the fitted unit, best_iteration or None)."""
    import xgboost  # here: stages that only read artifacts start without it

    train, best = folds != k, None
    if early is not None and inner is not None:
        fit_rows, watch = train & (folds != inner), folds == inner
        model = xgboost.XGBRegressor(**params, early_stopping_rounds=early)
        model.fit(X[fit_rows], target[fit_rows], eval_set=[(X[watch], target[watch])], verbose=False)
        best = int(model.best_iteration)
    model = xgboost.XGBRegressor(**(dict(params, n_estimators=best + 1) if best is not None else params))
    model.fit(X[train], target[train])
    return RegressorUnit(model), best


def regressor_unit(method: str, X, target, folds, k, inner, cfg_stack, params, early):
    """(the fitted unit of one target column for fold k, XGBoost best_iteration or None)."""
    if method == "xgboost":
        return _xgb_regressor(X, target, folds, k, inner, params, early)
    train = folds != k
    return RegressorUnit(LinearModel.fit(X[train], target[train], cfg_stack.ridge_alpha)), None
