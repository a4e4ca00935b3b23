"""Stage 05: blend experiments' OOF/test predictions (mean now; the XGBoost stacker plugs in here)."""
import logging

import numpy as np
import pandas as pd

from ..artifacts import (artifact_path, input_ref, is_complete, latest, read_manifest, require_same_folds,
                         staging, write_manifest)
from ..config import sections
from ..data.table import output_names
from ..errors import PipelineError
from ..metrics import score
from ..utils.io import stable_hash
from .predict import predict_dir, read_predictions, write_predictions

log = logging.getLogger("foldstack")


def stack_inputs(ctx) -> dict:
    """{experiment: its predictions folder}: the current experiment's exact version, others' latest."""
    found = {}
    for name in ctx.cfg.stack.experiments or [ctx.exp]:
        path = predict_dir(ctx)[0] if name == ctx.exp else latest(ctx.root, "predict", ctx.comp, name)
        if path is None or not is_complete(path):
            raise PipelineError(f"no OOF predictions for experiment {name!r}: run `make oof COMP={ctx.comp} EXP={name}`")
        found[name] = path
    return found


def stack_dir(ctx):
    inputs = stack_inputs(ctx)
    key = stable_hash({"inputs": {n: read_manifest(p)["key"] for n, p in inputs.items()},
                       **sections(ctx.cfg, ["stack"])})
    return artifact_path(ctx.root, "stack", ctx.comp, key), inputs


def run(ctx):
    path, inputs = stack_dir(ctx)
    refs = {name: input_ref(p, ctx.root) for name, p in inputs.items()}
    fold_key = require_same_folds({n: r["fold_key"] for n, r in refs.items()}, "stack inputs")
    comp, y = ctx.cfg.competition, ctx.targets
    names = output_names(comp)
    oofs = {n: read_predictions(p / "oof.csv", ctx.train.ids, "OOF predictions", names) for n, p in inputs.items()}
    tests = {n: read_predictions(p / "test.csv", ctx.test.ids, "test predictions", names) for n, p in inputs.items()}
    cvs = {n: score(comp.metric, y, oof, comp.task, comp.tag_threshold) for n, oof in oofs.items()}
    blend_oof, blend_test = np.mean(list(oofs.values()), 0), np.mean(list(tests.values()), 0)
    cvs["blend"] = score(comp.metric, y, blend_oof, comp.task, comp.tag_threshold)
    for n, v in cvs.items():
        log.info(f"OOF CV {comp.metric} {n:>20}: {v:.5f}")
    if is_complete(path):
        log.info(f"stack up to date: {path}")
        return path
    folds = pd.read_csv(next(iter(inputs.values())) / "oof.csv", usecols=["fold"])["fold"]
    with staging(path) as tmp:
        write_predictions(tmp, ctx, folds, blend_oof, blend_test, names)
        write_manifest(tmp, "stack", path.name, sections(ctx.cfg, ["stack"]), fold_key=fold_key, inputs=refs,
                       metrics={comp.metric: cvs})
    log.info(f"wrote blend of {len(inputs)} experiment(s) -> {path}")
    return path
