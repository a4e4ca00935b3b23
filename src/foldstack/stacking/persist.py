"""A fitted level 2 (blend.BlendModel, meta.MetaModel) as files, and back, without pickle: level2.json describes
it, level2.npz holds the logistic and ridge regressions' arrays (LogisticModel, regress.LinearModel) and each
XGBoost unit (classifier or regressor) is a booster JSON file. `make stack` saves its output level into its folder
(LEVEL_DIR); `make bundle` copies it."""
import json
import tempfile
from pathlib import Path

import numpy as np

from ..errors import PipelineError
from ..utils.io import atomic_write_bytes, atomic_write_json, atomic_writer
from .blend import BlendModel
from .meta import XGB_THREADS, FittedUnit, MetaModel, PrevalenceUnit
from .regress import LinearModel, RegressorUnit
from ..wide import TopProbs

LEVEL_DIR, LEVEL_FILE, ARRAYS_FILE = "level2", "level2.json", "level2.npz"
FORMAT = 2  # 2: logistic regressions as their arrays (LogisticModel)
MAX_DIFF = 1e-6  # what the saved level 2, loaded back, may differ from the test predictions it was fitted to give


class LogisticModel:
    """A fitted StandardScaler + LogisticRegression pipeline (meta.fit_logreg) as its arrays, predicting as
    sklearn's predict_proba does, operation for operation (tests/test_stacking.py compares them): scale in the
    input's float dtype, then the logistic of the one score (two classes) or the softmax of the scores."""
    ARRAYS = ("mean", "scale", "coef", "intercept")

    def __init__(self, mean, scale, coef, intercept):
        self.mean, self.scale = np.asarray(mean), np.asarray(scale)
        self.coef, self.intercept = np.asarray(coef), np.asarray(intercept)

    @classmethod
    def from_pipeline(cls, pipeline) -> "LogisticModel":
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        scaler, logreg = (step for _, step in pipeline.steps)
        if not (isinstance(scaler, StandardScaler) and isinstance(logreg, LogisticRegression)
                and scaler.with_mean and scaler.with_std):
            raise PipelineError(f"level 2: cannot save {pipeline} as arrays (StandardScaler + LogisticRegression)")
        return cls(scaler.mean_, scaler.scale_, logreg.coef_, logreg.intercept_)

    def predict_proba(self, x) -> np.ndarray:
        from scipy.special import expit

        x = np.array(x, dtype=x.dtype if x.dtype in (np.float32, np.float64) else np.float64)
        x -= self.mean.astype(x.dtype)
        x /= self.scale.astype(x.dtype)
        scores = x @ self.coef.T + self.intercept
        if scores.shape[1] == 1:
            p = expit(scores[:, 0])
            return np.stack([1 - p, p], axis=1)
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores


def _save_booster(model, name: str, folder: Path) -> str:
    """An XGBClassifier / XGBRegressor as its save_model JSON (booster + estimator type); returns the file name."""
    with tempfile.TemporaryDirectory() as tmp:
        model.save_model(Path(tmp) / "booster.json")
        atomic_write_bytes(folder / f"{name}.json", (Path(tmp) / "booster.json").read_bytes())
    return f"{name}.json"


def _unit_record(unit, name: str, folder: Path, arrays: dict) -> dict:
    if isinstance(unit, PrevalenceUnit):
        return {"type": "prevalence", "freq": unit.freq.tolist()}
    if isinstance(unit, RegressorUnit):
        if hasattr(unit.model, "get_booster"):
            return {"type": "xgboost_regressor", "booster": _save_booster(unit.model, name, folder)}
        arrays.update({f"{name}.{a}": getattr(unit.model, a) for a in LinearModel.ARRAYS})
        return {"type": "ridge"}
    record = {"classes": unit.classes.tolist(), "n_out": unit.n_out}
    if hasattr(unit.model, "get_booster"):
        return {**record, "type": "xgboost", "booster": _save_booster(unit.model, name, folder)}
    model = unit.model if isinstance(unit.model, LogisticModel) else LogisticModel.from_pipeline(unit.model)
    arrays.update({f"{name}.{a}": getattr(model, a) for a in LogisticModel.ARRAYS})
    return {**record, "type": "logreg"}


def _unit(record: dict, name: str, folder: Path, arrays):
    if record["type"] == "prevalence":
        return PrevalenceUnit(record["freq"])
    if record["type"] == "ridge":
        return RegressorUnit(LinearModel(*(arrays[f"{name}.{a}"] for a in LinearModel.ARRAYS)))
    if record["type"] == "xgboost_regressor":
        import xgboost

        model = xgboost.XGBRegressor()
        model.load_model(folder / record["booster"])
        return RegressorUnit(model.set_params(n_jobs=XGB_THREADS))
    if record["type"] == "xgboost":
        import xgboost

        model = xgboost.XGBClassifier()
        model.load_model(folder / record["booster"])
        model.set_params(n_jobs=XGB_THREADS)
    else:
        model = LogisticModel(*(arrays[f"{name}.{a}"] for a in LogisticModel.ARRAYS))
    return FittedUnit(model, np.asarray(record["classes"], np.int64), int(record["n_out"]))


def save_level(folder: Path, model) -> list[str]:
    """Write a fitted level 2 into `folder`; returns the file names written."""
    folder = Path(folder)
    if isinstance(model, BlendModel):
        atomic_write_json(folder / LEVEL_FILE, {"format": FORMAT, "kind": "blend", "method": model.method,
                                                "task": model.task, "weights": model.weights})
        return [LEVEL_FILE]
    if not isinstance(model, MetaModel):
        raise PipelineError(f"level 2: cannot save a {type(model).__name__}")
    arrays, folds = {}, []
    for k, units in enumerate(model.folds):
        folds.append([_unit_record(unit, f"fold{k}_unit{u}", folder, arrays) for u, unit in enumerate(units)])
    record = {"format": FORMAT, "kind": "meta", "method": model.method, "task": model.task,
              "n_outputs": model.n_outputs, "n_features": model.n_features, "n_prob_features": model.n_prob_features,
              "folds": folds}
    written = [LEVEL_FILE]
    if arrays:
        with atomic_writer(folder / ARRAYS_FILE) as f:
            np.savez(f, **arrays)
        written.append(ARRAYS_FILE)
    atomic_write_json(folder / LEVEL_FILE, record)
    boosters = [u["booster"] for units in folds for u in units if "booster" in u]
    return written + boosters


def save_checked(folder: Path, model, tests: list, meta, expected: np.ndarray) -> dict:
    """Save a fitted level 2 into the new `folder`, checking that, loaded back (as the bundle's kernel loads it),
    it predicts `expected` from `tests` and `meta` within MAX_DIFF. Returns what the stack's manifest records."""
    Path(folder).mkdir()
    files = save_level(folder, model)
    again = load_level(folder).predict(tests, meta)
    if isinstance(expected, TopProbs):  # predict.keep_top: the same kept classes, probabilities within MAX_DIFF
        diff = 0.0 if expected.equal(again, MAX_DIFF) else float("inf")
    else:
        diff = float(np.abs(again - expected).max())
    if not diff <= MAX_DIFF:
        raise PipelineError(f"{folder}: the saved level 2, loaded back, differs from the fitted one by {diff:.3g} "
                            f"(allowed {MAX_DIFF})")
    return {"files": files, "max_abs_diff": diff}


def load_level(folder: Path):
    """The BlendModel or MetaModel saved in `folder` (one line naming the file when it is not readable)."""
    path = Path(folder) / LEVEL_FILE
    try:
        record = json.loads(path.read_text())
        if record.get("format") != FORMAT:
            raise ValueError(f"format {record.get('format')}, expected {FORMAT}")
        if record["kind"] == "blend":
            weights = record["weights"]
            return BlendModel(record["method"], record["task"], None if weights is None else tuple(weights))
        arrays_path = Path(folder) / ARRAYS_FILE
        arrays = np.load(arrays_path, allow_pickle=False) if arrays_path.is_file() else None
        folds = [[_unit(u, f"fold{k}_unit{i}", Path(folder), arrays) for i, u in enumerate(units)]
                 for k, units in enumerate(record["folds"])]
        return MetaModel(record["method"], record["task"], record["n_outputs"], record["n_features"],
                         record["n_prob_features"], folds)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PipelineError(f"{path}: unreadable level 2 ({e.__class__.__name__}: {e})") from None
