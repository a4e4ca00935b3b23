"""Stage 02: train one fold or all folds. Each fold is its own folder: done when its manifest exists."""
import logging

from ..artifacts import artifact_path, is_complete, read_manifest, write_manifest
from ..config import sections
from ..errors import PipelineError
from ..utils.io import stable_hash
from .folds import load_folds

log = logging.getLogger("foldstack")
TRAIN_SECTIONS = ["competition", "model", "data", "mixup", "train", "loss"]


def train_dir(ctx, fold_key: str):
    key = stable_hash({"folds": fold_key, **sections(ctx.cfg, TRAIN_SECTIONS)})
    return artifact_path(ctx.root, "train", ctx.comp, key, ctx.exp)


def fold_dirs(ctx):
    """(train folder, fold key, folds, [fold folders]) for the current config; every fold must be trained."""
    _, fold_key, folds = load_folds(ctx)
    path = train_dir(ctx, fold_key)
    dirs = [path / f"fold{k}" for k in range(ctx.cfg.folds.n_splits)]
    missing = [k for k, d in enumerate(dirs) if not is_complete(d)]
    if missing:
        raise PipelineError(f"fold(s) {missing} not trained for this config ({path}): run `make train COMP={ctx.comp}`")
    for d in dirs:
        if read_manifest(d)["fold_key"] != fold_key:
            raise PipelineError(f"{d} was trained on folds {read_manifest(d)['fold_key']}, not {fold_key}")
    return path, fold_key, folds, dirs


def run(ctx):
    from ..engine import train_fold  # torch import only where it is needed

    _, fold_key, folds = load_folds(ctx)
    path = train_dir(ctx, fold_key)
    n = ctx.cfg.folds.n_splits
    if ctx.fold is not None and not 0 <= ctx.fold < n:
        raise PipelineError(f"FOLD={ctx.fold} is out of range: folds are 0..{n - 1}")
    todo = [ctx.fold] if ctx.fold is not None else list(range(n))
    ctx.targets  # decode targets now: a bad label fails before any training
    for k in todo:
        out = path / f"fold{k}"
        if is_complete(out):
            log.info(f"fold {k} up to date: {out}")
            continue
        out.mkdir(parents=True, exist_ok=True)
        log.info(f"training fold {k} of {n} -> {out}")
        metrics = train_fold(ctx.cfg, ctx.train.paths, ctx.targets, folds, k, out)
        write_manifest(out, "train", path.name, sections(ctx.cfg, TRAIN_SECTIONS), fold_key=fold_key,
                       inputs={"folds": dict(key=fold_key)}, metrics=metrics, fold=k, experiment=ctx.exp)
        log.info(f"fold {k} done: {ctx.cfg.competition.metric} last {metrics['last']:.4f} best {metrics['best']:.4f}")
    return path
