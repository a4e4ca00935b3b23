"""Stage 03: OOF probabilities for every train row from its fold's model; test averaged over folds."""
import logging

import numpy as np
import pandas as pd
import torch

from ..artifacts import artifact_path, is_complete, staging, write_manifest
from ..config import sections
from ..data.dataset import ImageDataset, make_loader
from ..data.table import output_names
from ..data.transforms import build_transforms
from ..errors import PipelineError
from ..metrics import score
from ..utils.io import atomic_write_csv, read_csv, stable_hash
from .train import fold_dirs

log = logging.getLogger("foldstack")


def predict_dir(ctx):
    train_path, fold_key, folds, dirs = fold_dirs(ctx)
    key = stable_hash({"train": train_path.name, **sections(ctx.cfg, ["predict"])})
    return artifact_path(ctx.root, "predict", ctx.comp, key, ctx.exp), train_path, fold_key, folds, dirs


def read_predictions(path, ids: list[str], what: str, columns: list[str]) -> np.ndarray:
    """A prediction CSV's probability matrix, checked against the expected ids and columns."""
    frame = read_csv(path, what)
    if frame["id"].tolist() != ids:
        raise PipelineError(f"{path}: ids differ from the competition's rows")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PipelineError(f"{path}: missing prediction column(s) {missing}")
    return frame[columns].astype(float).to_numpy()


def write_predictions(folder, ctx, folds, oof: np.ndarray, test: np.ndarray, names: list[str]) -> None:
    """oof.csv (id, fold, one probability column per output) and test.csv (id, same columns)."""
    atomic_write_csv(folder / "oof.csv", pd.concat([pd.DataFrame({"id": ctx.train.ids, "fold": folds}),
                                                    pd.DataFrame(oof, columns=names)], axis=1))
    atomic_write_csv(folder / "test.csv", pd.concat([pd.DataFrame({"id": ctx.test.ids}),
                                                     pd.DataFrame(test, columns=names)], axis=1))


def run(ctx):
    from ..engine import predict_probs, resolve_device, weights_for_prediction
    from ..models import create_model

    path, train_path, fold_key, folds, dirs = predict_dir(ctx)
    if is_complete(path):
        log.info(f"predictions up to date: {path}")
        return path
    cfg, comp = ctx.cfg, ctx.cfg.competition
    device, tta = resolve_device(cfg.runtime.device), cfg.predict.tta
    transform = build_transforms(cfg.data, train=False)
    y = ctx.targets
    oof = np.full(y.shape, np.nan)
    test_loader = make_loader(ImageDataset(ctx.test.paths, None, transform), cfg.data.batch_size * 2,
                              cfg.runtime.num_workers)
    models, fold_scores = [], []
    model_cfg = cfg.model.model_copy(update={"pretrained_path": None})
    for k, fold_dir in enumerate(dirs):
        fold_models = []  # several per fold with predict.checkpoint=snapshots or a list: their mean is the fold's
        for weights in weights_for_prediction(fold_dir, cfg.predict.checkpoint):
            model = create_model(model_cfg, y.shape[1], comp.task)
            model.load_state_dict(weights)
            fold_models.append(model.to(device))
        models += fold_models
        valid = np.flatnonzero(folds == k)
        loader = make_loader(ImageDataset([ctx.train.paths[i] for i in valid], None, transform),
                             cfg.data.batch_size * 2, cfg.runtime.num_workers)
        oof[valid] = predict_probs(fold_models, loader, cfg, device, tta, desc=f"oof fold {k}")
        fold_scores.append(score(comp.metric, y[valid], oof[valid], comp.task, comp.tag_threshold))
        log.info(f"fold {k}: OOF {comp.metric} {fold_scores[-1]:.4f}")
    test = predict_probs(models, test_loader, cfg, device, tta, desc=f"test ({len(models)} models)")
    if np.isnan(oof).any():  # every row is in exactly one fold, so every row gets exactly one prediction
        raise PipelineError(f"OOF left {int(np.isnan(oof).any(1).sum())} train rows unpredicted")
    cv = score(comp.metric, y, oof, comp.task, comp.tag_threshold)
    log.info(f"OOF CV {comp.metric}: {cv:.5f} (folds: {', '.join(f'{s:.4f}' for s in fold_scores)})")
    with staging(path) as tmp:
        write_predictions(tmp, ctx, folds, oof, test, output_names(comp))
        write_manifest(tmp, "predict", path.name, sections(cfg, ["predict"]), fold_key=fold_key,
                       inputs={"train": dict(path=str(train_path.relative_to(ctx.root)), key=train_path.name)},
                       metrics={comp.metric: cv, "fold_scores": fold_scores}, experiment=ctx.exp,
                       device=str(device), torch=torch.__version__)
    log.info(f"wrote OOF + test predictions -> {path}")
    return path
