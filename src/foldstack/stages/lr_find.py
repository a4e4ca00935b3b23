"""`make lr-find`: an LR range test on fold 0 with the experiment's model, loss, optimizer and augmentation.
Writes lr_find/<comp>/<exp>/<hash>/ (lr_find.csv, lr_find.png, manifest) and prints the suggested LR."""
import logging

import pandas as pd

from ..artifacts import artifact_path, is_complete, read_manifest, staging, write_manifest
from ..config.loading import sections
from ..lineage import TRAIN_SECTIONS, load_folds, models_key_parts
from ..utils.io import atomic_write_csv, stable_hash

log = logging.getLogger("foldstack")


def run(ctx):
    from itertools import cycle

    import torch

    from ..engine.fold import build_fold
    from ..engine.step import micro_step, optimizer_step
    from ..models.net import set_backbone_trainable
    from ..models.hub import scratch_reason
    from ..optim.lr_find import range_test, suggest_lr
    from ..utils.plots import plot_lr_find

    cfg, w, split = ctx.cfg, ctx.weights, load_folds(ctx)
    fold_key = split.key
    path = artifact_path(ctx.root, "lr_find", ctx.comp, stable_hash(models_key_parts(ctx, fold_key, ("lr_find",))),
                         ctx.exp)
    if is_complete(path):
        log.info(f"LR range test up to date: {path} (suggested lr {read_manifest(path)['metrics']['suggested_lr']})")
        return path
    lf = cfg.lr_find
    with staging(path) as tmp:
        scratch = scratch_reason(cfg.model, ctx.root, ctx.download)
        if scratch:
            log.info(scratch)
        f = build_fold(cfg, ctx.images, ctx.targets, split.folds, 0, tmp, weights=w.path if w is not None else None)
        f.model.train()
        set_backbone_trainable(f.model, cfg.train.freeze_epochs == 0)
        batches, accum = enumerate(cycle(f.train_loader)), cfg.train.accum_steps

        def train_step():
            """One update, exactly as training makes it: accum_steps micro-batches (multiscale, mixup)."""
            losses = [micro_step(f, cfg, 0, 0, i, *batch, sync=j == accum - 1)
                      for j, (i, batch) in zip(range(accum), batches)]
            optimizer_step(f, cfg)
            return torch.stack(losses).mean().item()

        def set_lr(lr):
            for group in f.optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)

        lrs, losses = range_test(train_step, set_lr, lf.start_lr, lf.end_lr, lf.steps, lf.smoothing, lf.diverge)
        suggested = suggest_lr(lrs, losses)
        atomic_write_csv(tmp / "lr_find.csv", pd.DataFrame({"lr": lrs, "smoothed_loss": losses}))
        plot_lr_find(lrs, losses, suggested, tmp / "lr_find.png", f"{ctx.comp} / {ctx.exp}: LR range test, fold 0")
        write_manifest(tmp, "lr_find", path.name, sections(cfg, TRAIN_SECTIONS + ["lr_find"]), fold_key=fold_key,
                       inputs={"folds": dict(key=fold_key)}, experiment=ctx.exp,
                       metrics=dict(suggested_lr=suggested, steps_run=len(lrs),
                                    **({"weights": w.sha256} if w is not None else {})))
    hint = f': try OVERRIDES="train.lr={suggested:.2g}"' if suggested else " (too few steps before divergence)"
    log.info(f"LR range test -> {path / 'lr_find.png'}; suggested lr {suggested}{hint}")
    return path
