"""A fitted level 2 (blend.BlendModel, meta.MetaModel) as files, and back, without pickle: level2.json describes
it (method, weights, per fold and unit: prevalence, or the classes and where its parameters are), level2.npz holds
the logistic regressions' fitted arrays (allow_pickle=False), and each XGBoost unit is a booster JSON file
(save_model). What is loaded predicts bit for bit what was saved (tests/test_bundle.py checks it)."""
import json
import tempfile
from pathlib import Path

import numpy as np

from ..errors import PipelineError
from ..utils.io import atomic_write_bytes, atomic_write_json, atomic_writer
from .blend import BlendModel
from .meta import XGB_THREADS, FittedUnit, MetaModel, PrevalenceUnit

LEVEL_FILE, ARRAYS_FILE = "level2.json", "level2.npz"
FORMAT = 1


def _sklearn_classes() -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    return {"StandardScaler": StandardScaler, "LogisticRegression": LogisticRegression}


def _fitted_state(estimator, prefix: str, arrays: dict) -> dict:
    """An sklearn estimator as {class, params, scalars}: its constructor parameters and every fitted attribute
    (name ending in `_`), arrays stored in `arrays` under prefix + name."""
    name = type(estimator).__name__
    if name not in _sklearn_classes():
        raise PipelineError(f"level 2: cannot save a {name} without pickle")
    scalars = {}
    for attr, value in vars(estimator).items():
        if not attr.endswith("_") or attr.startswith("_"):
            continue
        if isinstance(value, np.ndarray):
            arrays[prefix + attr] = value
        elif isinstance(value, (int, float, np.integer, np.floating)):
            scalars[attr] = value.item() if isinstance(value, np.generic) else value
        else:
            raise PipelineError(f"level 2: {name}.{attr} ({type(value).__name__}) cannot be saved without pickle")
    state = {"class": name, "params": estimator.get_params(), "scalars": scalars}
    try:
        json.dumps(state)
    except TypeError as e:
        raise PipelineError(f"level 2: {name} has a parameter JSON cannot hold ({e})") from None
    return state


def _restored(state: dict, prefix: str, arrays) -> object:
    estimator = _sklearn_classes()[state["class"]](**state["params"])
    for attr, value in state["scalars"].items():
        setattr(estimator, attr, value)
    for key in arrays.files:
        if key.startswith(prefix):
            setattr(estimator, key[len(prefix):], arrays[key])
    return estimator


def _unit_record(unit, name: str, folder: Path, arrays: dict) -> dict:
    if isinstance(unit, PrevalenceUnit):
        return {"type": "prevalence", "freq": unit.freq.tolist()}
    record = {"classes": unit.classes.tolist(), "n_out": unit.n_out}
    if hasattr(unit.model, "get_booster"):  # XGBClassifier: its save_model JSON (booster + classifier type)
        with tempfile.TemporaryDirectory() as tmp:
            unit.model.save_model(Path(tmp) / "booster.json")
            atomic_write_bytes(folder / f"{name}.json", (Path(tmp) / "booster.json").read_bytes())
        return {**record, "type": "xgboost", "booster": f"{name}.json"}
    steps = [_fitted_state(step, f"{name}.{i}.", arrays) for i, (_, step) in enumerate(unit.model.steps)]
    return {**record, "type": "sklearn", "steps": steps}


def _unit(record: dict, name: str, folder: Path, arrays):
    if record["type"] == "prevalence":
        return PrevalenceUnit(record["freq"])
    if record["type"] == "xgboost":
        import xgboost

        model = xgboost.XGBClassifier()
        model.load_model(folder / record["booster"])
        model.set_params(n_jobs=XGB_THREADS)
    else:
        from sklearn.pipeline import make_pipeline

        model = make_pipeline(*(_restored(s, f"{name}.{i}.", arrays) for i, s in enumerate(record["steps"])))
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
    boosters = [u["booster"] for units in folds for u in units if u["type"] == "xgboost"]
    return written + boosters


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
