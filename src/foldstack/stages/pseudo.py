"""Stage 04: a pseudo-label set for round n: test rows selected from the test predictions of a level (the stack's
output by default, or an experiment) built on round n-1's models, written to pseudo/<comp>/round<n>/<hash>/.

Leak guards: the source must be built on the folds the current config trains on, and pseudo rows are test
rows only (the set holds test ids; nothing from a train row's label reaches it)."""
import logging

import numpy as np
import pandas as pd

from ..artifacts import artifact_path, input_ref, is_complete, read_manifest, staging, write_manifest
from ..config import sections
from ..data.table import output_names
from ..errors import PipelineError
from ..predictions import load_predictions
from ..pseudo import select_pseudo
from ..utils.io import atomic_save_npy, atomic_write_csv, stable_hash
from .folds import load_folds
from .submit import source_dir

log = logging.getLogger("foldstack")


def models_round(ctx, source) -> int:
    """The pseudo-label round of the models behind a prediction or stack artifact (0: no pseudo rows)."""
    manifest = read_manifest(source)
    if manifest["stage"] == "stack":
        return max(models_round(ctx, ctx.root / ref["path"]) for ref in manifest["inputs"].values())
    fold0 = ctx.root / manifest["inputs"]["train"]["path"] / "fold0"
    return int(read_manifest(fold0).get("pseudo_round", 0))


def run(ctx):
    n = ctx.args.round
    if n < 1:
        raise PipelineError(f"ROUND={n}: rounds start at 1")
    cfg, comp = ctx.cfg, ctx.cfg.competition
    _, fold_key, _ = load_folds(ctx)
    source = source_dir(ctx, cfg.pseudo.source)
    ref = input_ref(source, ctx.root)
    if ref["fold_key"] != fold_key:  # its OOF/stack was fitted on another split: training on it would leak
        raise PipelineError(f"pseudo.source {ref['path']} was built on folds {ref['fold_key']}, but this config "
                            f"trains on folds {fold_key}; rebuild the source on the same folds")
    built_on = models_round(ctx, source)
    if built_on != n - 1:
        raise PipelineError(f"ROUND={n} needs a source built on round {n - 1}'s models; {ref['path']} comes "
                            f"from round {built_on}'s")
    key = stable_hash({"source": ref["key"], **sections(cfg, ["pseudo"])})
    path = artifact_path(ctx.root, "pseudo", ctx.comp, key, f"round{n}")
    if is_complete(path):
        log.info(f"pseudo-label set up to date: {path}")
        return path
    names = output_names(comp)
    test = load_predictions(source, ctx.train.ids, ctx.test.ids, len(names)).test
    p = cfg.pseudo
    idx, targets, conf = select_pseudo(test, comp.task, p.rule, p.threshold, p.fraction, p.soft, comp.tag_threshold)
    if len(idx) == 0:
        raise PipelineError(f"pseudo: no test row passes rule {p.rule} (threshold {p.threshold}); lower it")
    counts = targets.sum(0).round(1).tolist()
    with staging(path) as tmp:
        atomic_save_npy(tmp / "targets.npy", targets)
        atomic_write_csv(tmp / "pseudo.csv", pd.concat([
            pd.DataFrame({"id": [ctx.test.ids[i] for i in idx], "confidence": conf}),
            pd.DataFrame(targets, columns=names)], axis=1))
        write_manifest(tmp, "pseudo", path.name, sections(cfg, ["pseudo"]), fold_key=fold_key,
                       inputs={"source": ref}, round=n, source_round=built_on,
                       metrics=dict(rows=len(idx), of_test_rows=len(test), mean_confidence=float(conf.mean()),
                                    target_sums=dict(zip(names, counts))))
    log.info(f"round {n}: {len(idx)} of {len(test)} test rows pseudo-labelled ({p.rule}, "
             f"{'soft' if p.soft else 'hard'}), mean confidence {conf.mean():.4f} -> {path}")
    return path
