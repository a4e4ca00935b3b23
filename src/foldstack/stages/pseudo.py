"""Stage 04: pseudo-label round n, whole (a missing earlier round is built first): select test rows from
pseudo.source's test predictions on round n-1's models -> pseudo/<comp>/round<n>/<hash>/; train, predict and stack
every stacked experiment with them; print the round's CV next to the round before. Leak guards: the source is built
on the current folds, and pseudo rows never enter a validation fold, so OOF CV stays comparable across rounds."""
import logging

import numpy as np
import pandas as pd

from .. import pipeline, tracking
from ..artifacts import input_ref, is_complete, read_manifest, staging, write_manifest
from ..data.table import output_names
from ..errors import PipelineError
from ..lineage import load_folds, models_round, pseudo_set_dir, source_dir, stack_dir, with_round
from ..predictions import load_predictions
from ..pseudo.select import select_pseudo
from ..utils.io import atomic_save_npy, atomic_write_csv
from ..wide import ClassTargets

log = logging.getLogger("foldstack")


def select(ctx, n: int):
    """Round n's pseudo-label set (written unless up to date)."""
    cfg, comp = ctx.cfg, ctx.cfg.competition
    if comp.task == "regression":  # a confident pseudo-label is a class probability's notion
        raise PipelineError("make pseudo: not for regression yet (competition.task regression)")
    fold_key = load_folds(ctx).key
    target = pseudo_set_dir(ctx, n, fold_key)
    path, source = target.path, target.source
    built_on = models_round(ctx, source)
    if built_on != n - 1:
        raise PipelineError(f"ROUND={n} needs a source built on round {n - 1}'s models; {source} comes "
                            f"from round {built_on}'s")
    if is_complete(path):
        log.info(f"round {n}: pseudo-label set up to date: {path}")
        return path
    names = output_names(comp)
    test = load_predictions(source, ctx.train.ids, ctx.test.ids, len(names)).test
    p = cfg.pseudo
    picked = select_pseudo(test, comp.task, p.rule, p.threshold, p.fraction, p.soft, comp.tag_threshold)
    idx, targets, conf = picked.rows, picked.targets, picked.confidence
    if len(idx) == 0:
        raise PipelineError(f"pseudo: no test row passes rule {p.rule} (threshold {p.threshold}); lower it")
    wide = isinstance(targets, ClassTargets)  # predict.keep_top: class indices, a label column
    with staging(path) as tmp:
        atomic_save_npy(tmp / "targets.npy", targets.labels if wide else targets)
        atomic_write_csv(tmp / "pseudo.csv", pd.concat([
            pd.DataFrame({"id": [ctx.test.ids[i] for i in idx], "confidence": conf}),
            pd.DataFrame({"label": [names[c] for c in targets.labels]}) if wide
            else pd.DataFrame(targets, columns=names)], axis=1))
        sums = ({"classes": int(len(np.unique(targets.labels)))} if wide
                else dict(target_sums=dict(zip(names, targets.sum(0).round(1).tolist()))))
        write_manifest(tmp, "pseudo", path.name, {"pseudo": p.selection()}, fold_key=fold_key,
                       inputs={"source": input_ref(source, ctx.root)}, round=n, source_round=built_on,
                       metrics=dict(rows=len(idx), of_test_rows=len(test), mean_confidence=float(conf.mean()),
                                    **sums))
    log.info(f"round {n}: {len(idx)} of {len(test)} test rows pseudo-labelled ({p.rule}, "
             f"{'soft' if p.soft else 'hard'}), mean confidence {conf.mean():.4f} -> {path}")
    return path


def stack_cv(ctx) -> tuple[str, float]:
    manifest = read_manifest(stack_dir(ctx).path)
    return manifest["output"], manifest["metrics"][manifest["output"]]


def run_round(ctx, n: int):
    prev = with_round(ctx, n - 1)
    if n > 1:
        try:
            source_dir(prev, ctx.cfg.pseudo.source)
        except PipelineError:
            log.info(f"round {n - 1} is not built yet: building it first")
            run_round(ctx, n - 1)
    set_path = select(ctx, n)
    for name in ctx.cfg.stack.experiments or [ctx.exp]:  # every stacked experiment, each with its own config file
        pipeline.run(ctx.derive(exp=name, pseudo={"round": n}), ["train", "oof"])
    here = with_round(ctx, n)
    pipeline.run(here, ["stack"])
    level, before = stack_cv(prev)
    _, after = stack_cv(here)
    print(f"round {n} ({read_manifest(set_path)['metrics']['rows']} pseudo rows): {level} OOF CV "
          f"{ctx.cfg.competition.metric} {after:.5f}; round {n - 1}: {before:.5f} ({after - before:+.5f})", flush=True)
    rows = read_manifest(set_path)["metrics"]["rows"]
    tracking.log_stage(ctx, f"pseudo-round{n}", set_path.name, {"pseudo_rows": rows, "cv_before": before,
                                                                 "cv_after": after},
                       pd.DataFrame({"round": [n - 1, n], "level": level, "cv": [before, after]}))
    return set_path


def run(ctx):
    if ctx.args.round < 1:
        raise PipelineError(f"ROUND={ctx.args.round}: rounds start at 1")
    return run_round(ctx, ctx.args.round)
