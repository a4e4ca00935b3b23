"""Stage 03: OOF probabilities for every train row from its own fold's model(s); test averaged over all folds. One
artifact per experiment and prediction setting (TTA views, merge, checkpoints): oof/<comp>/<exp>/<hash>/."""
import logging
import time

import numpy as np
import pandas as pd

from .. import tracking
from ..artifacts import is_complete, staging, write_manifest
from ..config.loading import sections
from ..data.table import output_names
from ..errors import PipelineError
from ..fold_weights import cv_table_note, fold_weights, outlier_folds
from ..lineage import predict_dir
from ..metrics import comp_score, fold_scores
from ..predictions import Predictions, rows_record, write_predictions
from ..wide import TopProbs

log = logging.getLogger("foldstack")


def run(ctx):
    target = predict_dir(ctx)
    path, trained = target.path, target.trained
    folds, dirs = trained.folds, trained.dirs
    if is_complete(path):
        log.info(f"predictions up to date: {path}")
        return path
    import torch  # only when there is something to predict: a no-op stays fast

    from ..engine.inference import inference_loader, load_fold_models, predict_probs, tta_views
    from ..engine.runtime import resolve_device

    cfg, comp, y = ctx.cfg, ctx.cfg.competition, ctx.targets
    device, views = resolve_device(cfg.runtime.device), tta_views(cfg)

    def loader(rows):
        return inference_loader(ctx.cfg, ctx.images, rows, device)

    log.info(f"TTA: {len(views)} view(s) ({', '.join(v.name for v in views)}), merged by {cfg.predict.tta_merge}")
    top = ctx.keep_top  # > 0: each row keeps its best classes (wide.py), never an (N, K) matrix
    if top:
        log.info(f"keeping each row's {top} most probable of {y.shape[1]} classes (predict.keep_top)")
    empty = (lambda: TopProbs.empty(len(y), top, y.shape[1])) if top else (lambda: np.full(y.shape, np.nan))
    oof, oof_plain = empty(), empty()
    models, fold_of_model, t0 = [], [], time.time()
    for k, fold_dir in enumerate(dirs):
        fold_models = load_fold_models(ctx.cfg, ctx.targets.shape[1], fold_dir, device)
        models += fold_models
        fold_of_model += [k] * len(fold_models)
        valid = np.flatnonzero(folds == k)
        oof[valid], oof_plain[valid] = predict_probs(fold_models, loader(valid), cfg, device, views,
                                                     desc=f"oof fold {k}", plain=True, top=top)
        log.info(f"fold {k}: OOF {comp.metric} {comp_score(comp, y[valid], oof[valid]):.4f}")
    unpredicted = oof.missing() if top else np.isnan(oof).any(1)
    if unpredicted.any():  # every row is in exactly one fold, so every row gets exactly one prediction
        raise PipelineError(f"OOF left {int(unpredicted.sum())} train rows unpredicted")
    scores, rule = fold_scores(comp, y, oof, folds), cfg.predict
    weights = fold_weights(scores, comp.metric, rule.fold_outlier, rule.fold_outlier_gap)  # `refuse`: stops here
    per_model = None if weights is None else [weights[k] / fold_of_model.count(k) for k in fold_of_model]
    test_rows = ctx.images.test_rows(np.arange(len(ctx.test.ids)))
    test, test_plain = predict_probs(models, loader(test_rows), cfg, device, views,
                                     desc=f"test ({len(models)} models)", plain=True, weights=per_model, top=top)
    seconds = time.time() - t0
    per_fold = len(models) // len(dirs)  # images through a model: each train row by its fold's, test by all
    images = (len(y) * per_fold + len(ctx.test.ids) * len(models)) * len(views)
    tta = len(views) > 1
    metrics = {comp.metric: comp_score(comp, y, oof), "fold_scores": scores,
               "params": sum(p.numel() for p in models[0].parameters()), "images_per_s": images / seconds}
    outliers = outlier_folds(scores, comp.metric, rule.fold_outlier_gap)
    metrics.update({"fold_outliers": outliers} if outliers else {}, **({"fold_weights": weights} if weights else {}))
    if tta:
        metrics.update(no_tta=comp_score(comp, y, oof_plain), no_tta_fold_scores=fold_scores(comp, y, oof_plain, folds))
    log.info(f"OOF CV {comp.metric}: {metrics[comp.metric]:.5f} (folds: "
             f"{', '.join(f'{s:.4f}' for s in metrics['fold_scores'])})"
             + (f"; without TTA {metrics['no_tta']:.5f}" if tta else "")
             + f" [{seconds:.0f}s, {metrics['images_per_s']:.0f} images/s, {metrics['params'] / 1e6:.2f}M params]"
             + cv_table_note(outliers, weights))
    with staging(path) as tmp:
        write_predictions(tmp, ctx.train.ids, ctx.test.ids, output_names(comp),
                          Predictions(oof, test, folds, oof_plain if tta else None, test_plain if tta else None))
        write_manifest(tmp, "predict", path.name, sections(cfg, ["predict"]), fold_key=trained.fold_key,
                       inputs={"train": dict(path=str(trained.path.relative_to(ctx.root)), key=trained.path.name)},
                       metrics=metrics, experiment=ctx.exp, rows=rows_record(ctx.train.ids, ctx.test.ids),
                       views=[v.name for v in views], models=len(models), seconds=round(seconds, 2), keep_top=top,
                       device=str(device), torch=torch.__version__)
    table = pd.DataFrame({"fold": range(len(scores)), comp.metric: scores}
                         | ({"no_tta": metrics["no_tta_fold_scores"]} if tta else {}))
    tracking.log_stage(ctx, "oof", path.name, {k: metrics[k] for k in (comp.metric, "no_tta", "images_per_s")
                                               if k in metrics}, table)
    log.info(f"wrote OOF + test predictions -> {path}")
    return path
