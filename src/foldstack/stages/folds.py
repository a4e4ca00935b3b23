"""Stage 01: split the train rows into folds. Same inputs, same folds."""
import logging

import numpy as np
import pandas as pd

from ..artifacts import artifact_path, is_complete, read_manifest, staging, write_manifest
from ..config import sections
from ..data.table import stratify_labels
from ..errors import PipelineError
from ..utils.io import atomic_write_csv, read_csv, stable_hash

log = logging.getLogger("foldstack")


def assign_folds(n_rows: int, n_splits: int, seed: int, method: str = "auto",
                 labels: np.ndarray | None = None, groups: np.ndarray | None = None) -> np.ndarray:
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold  # start-up time

    if method == "auto":
        method = ("stratified_group" if labels is not None else "group") if groups is not None else \
                 ("stratified" if labels is not None else "kfold")
    if method in ("stratified", "stratified_group") and labels is None:
        raise PipelineError(f"folds.method={method} needs a single-label task")
    if method in ("group", "stratified_group") and groups is None:
        raise PipelineError(f"folds.method={method} needs competition.group_col")
    if n_rows < n_splits:
        raise PipelineError(f"folds.n_splits={n_splits} is more than the {n_rows} train rows")
    splitter = {"kfold": KFold(n_splits, shuffle=True, random_state=seed),
                "stratified": StratifiedKFold(n_splits, shuffle=True, random_state=seed),
                "group": GroupKFold(n_splits, shuffle=True, random_state=seed),
                "stratified_group": StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)}[method]
    folds = np.full(n_rows, -1, np.int64)
    y = labels if labels is not None else np.zeros(n_rows)
    for k, (_, valid) in enumerate(splitter.split(np.zeros(n_rows), y, groups)):
        folds[valid] = k
    return folds


def folds_dir(ctx):
    key = stable_hash({**sections(ctx.cfg, ["competition", "folds"]), "train": ctx.train.fingerprint()})
    return artifact_path(ctx.root, "folds", ctx.comp, key)


def load_folds(ctx):
    """(folder, fold key, fold per train row) of the split the current config asks for."""
    path = folds_dir(ctx)
    if not is_complete(path):
        raise PipelineError(f"folds not built for this config ({path}): run `make folds COMP={ctx.comp}`")
    frame = read_csv(path / "folds.csv", "folds file")
    if frame["id"].tolist() != ctx.train.ids:
        raise PipelineError(f"{path / 'folds.csv'}: ids differ from {ctx.train.source}")
    return path, read_manifest(path)["key"], frame["fold"].astype(int).to_numpy()


def run(ctx):
    path = folds_dir(ctx)
    if is_complete(path):
        log.info(f"folds up to date: {path}")
        return path
    comp, cfg = ctx.cfg.competition, ctx.cfg.folds
    groups = ctx.train.frame[comp.group_col].to_numpy() if comp.group_col else None
    folds = assign_folds(len(ctx.train), cfg.n_splits, cfg.seed, cfg.method,
                         stratify_labels(ctx.targets, comp), groups)
    sizes = np.bincount(folds, minlength=cfg.n_splits).tolist()
    with staging(path) as tmp:
        atomic_write_csv(tmp / "folds.csv", pd.DataFrame({"id": ctx.train.ids, "fold": folds}))
        write_manifest(tmp, "folds", path.name, sections(ctx.cfg, ["competition", "folds"]), fold_key=path.name,
                       inputs={"train": dict(path=ctx.train.source, fingerprint=ctx.train.fingerprint())},
                       metrics={"fold_sizes": sizes})
    log.info(f"wrote {cfg.n_splits} folds (sizes {sizes}) -> {path}")
    return path
