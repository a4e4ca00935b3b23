"""Stage 06: a level's test predictions in the competition's format, validated, versioned, copied to
./submission.csv. submit.source: `stack` (the stack's output level) or an experiment name; submit.round: the
pseudo-label round it comes from (default: the latest one built)."""
import logging

from ..artifacts import input_ref, is_complete, staging, write_manifest
from ..config.loading import sections
from ..data.table import output_names
from ..lineage import submission_source, submit_dir
from ..predictions import load_predictions
from ..stacking.thresholds import level_thresholds
from ..submission import build_submission, validate_submission
from ..utils.io import atomic_copy, atomic_write_csv

log = logging.getLogger("foldstack")


def run(ctx):
    n, source = submission_source(ctx)
    if n:
        log.info(f"submitting pseudo-label round {n}'s {ctx.cfg.submit.source} (submit.round=0 for the first one)")
    comp = ctx.cfg.competition
    ref = input_ref(source, ctx.root)
    path = submit_dir(ctx, source)
    if is_complete(path):
        log.info(f"submission up to date: {path}")
    else:
        names = output_names(comp)
        preds = load_predictions(source, ctx.train.ids, ctx.test.ids, len(names))
        thresholds = level_thresholds(comp, ctx.cfg.stack, ctx.targets, source, names, preds.oof)
        sub = build_submission(comp, ctx.test.ids, preds.test, thresholds)
        validate_submission(sub, ctx.test.frame, comp, source=str(path / "submission.csv"))
        with staging(path) as tmp:
            atomic_write_csv(tmp / "submission.csv", sub)
            write_manifest(tmp, "submit", path.name, sections(ctx.cfg, ["competition", "submit"]),
                           fold_key=ref["fold_key"], inputs={"source": ref}, metrics={"rows": len(sub)},
                           thresholds=None if thresholds is None else [float(t) for t in thresholds])
        log.info(f"wrote validated submission ({len(sub)} rows) from {ref['path']} -> {path / 'submission.csv'}")
    atomic_copy(path / "submission.csv", ctx.root / "submission.csv")
    log.info(f"copied to {ctx.root / 'submission.csv'}")
    return path
