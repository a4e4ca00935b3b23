"""Stage 05: level 2 (blends and meta-models), fitted fold by fold on level 1's split: every CV is out-of-fold.

Writes stacks/<comp>/<hash>/: the output level's oof/test predictions and fitted model (level2/, for `make
bundle`), report.csv/.png, every level's test predictions (levels_test.npz), multilabel thresholds."""
import logging

import numpy as np
import pandas as pd

from .. import tracking
from ..artifacts import input_ref, is_complete, read_manifest, require_same_folds, staging, write_manifest
from ..config.loading import sections
from ..data.meta_features import image_meta_features
from ..data.tabular import tabular_matrices
from ..data.table import input_dir, output_names
from ..errors import PipelineError
from ..lineage import stack_dir, with_round
from ..predictions import CLASSES_SUFFIX, Predictions, load_predictions, rows_record, write_predictions
from ..stacking.level import fit_level, uses_meta_features
from ..stacking.thresholds import threshold_names, thresholds_for, write_thresholds
from ..stacking.blend import BLENDS, WIDE_BLENDS
from ..stacking.persist import LEVEL_DIR, save_checked
from ..stacking.report import format_report, level_report
from ..utils.io import atomic_write_csv, atomic_writer
from ..utils.plots import plot_levels
from ..wide import TopProbs, is_wide, refuse_dense

log = logging.getLogger("foldstack")


def level_name(method: str) -> str:
    return f"{'blend' if method in BLENDS else 'stack'}:{method}"


def level_two(ctx, preds: dict, folds: np.ndarray) -> tuple[dict, dict, tuple]:
    """({level name: (kind, oof, test)} for every level-1 input and method in stack.compare + method, {level name:
    what was fitted}, (the output level's fitted model, the test predictions and image features it predicts from))."""
    st, comp, y = ctx.cfg.stack, ctx.cfg.competition, ctx.targets
    levels, fitted = {}, {}
    for name, p in preds.items():
        if p.oof_plain is not None:
            levels[f"{name} (no TTA)"] = ("single model", p.oof_plain, p.test_plain)
        levels[name] = ("single model + TTA" if p.oof_plain is not None else "single model", p.oof, p.test)
    oofs, tests = [p.oof for p in preds.values()], [p.test for p in preds.values()]
    methods = list(dict.fromkeys(st.compare + [st.method]))  # ordered, unique
    if comp.task == "regression":  # ranks are not values: no rank blend of regression predictions
        if st.method == "rank":
            raise PipelineError("stack.method=rank: ranks are not values; a regression blends by mean, weighted "
                                "or geometric")
        methods = [m for m in methods if m != "rank"]
    if is_wide(*oofs):  # predict.keep_top: blends of each row's best classes, by mean only (wide.py)
        if st.method not in WIDE_BLENDS:
            refuse_dense(f"stack.method {st.method}")
        skipped = [m for m in methods if m not in WIDE_BLENDS]
        if skipped:
            log.info(f"predict.keep_top: not comparing {', '.join(skipped)} (they need every class's probability)")
        methods = [m for m in methods if m in WIDE_BLENDS]
    oof_meta = test_meta = None  # the meta-models' meta features, read once for all of them
    if any(uses_meta_features(m, st, comp.tabular_cols) for m in methods):
        oof_meta, test_meta = meta_matrices(ctx)
    for method in methods:
        fit = fit_level(method, oofs, tests, y, folds, comp, st, oof_meta, test_meta)
        kind = "blend" if method in BLENDS else f"stack on {len(oofs)} experiment(s)"
        levels[level_name(method)] = (kind, fit.oof, fit.test)
        if method == st.method:
            output = (fit.model, tests, test_meta if uses_meta_features(method, st, comp.tabular_cols) else None)
        if fit.info:
            fitted[level_name(method)] = fit.info
            log.info(f"{level_name(method)} fitted: {fit.info}")
    return levels, fitted, output


def meta_matrices(ctx) -> tuple[np.ndarray, np.ndarray]:
    """The meta-models' meta features of the train and test rows: stack.meta_features read from the image
    headers, then the encoded competition.tabular_cols (data/tabular.py)."""
    st, comp = ctx.cfg.stack, ctx.cfg.competition
    oof, test = [image_meta_features(t.samples, st.meta_features) if st.meta_features else np.zeros((len(t), 0))
                 for t in (ctx.train, ctx.test)]
    if comp.tabular_cols:
        tab_oof, tab_test, _ = tabular_matrices(comp, input_dir(comp, ctx.root, ctx.comp), ctx.train, ctx.test)
        oof, test = np.hstack([oof, tab_oof]), np.hstack([test, tab_test])
    return oof, test


def reference_levels(ctx, inputs: dict) -> tuple[dict, dict]:
    """Report-only rows ({level: (kind, oof, test)}, {level: size and speed}): each distilled student's teacher,
    and the output level of every earlier pseudo-label round's stack (same folds and rows: their CVs compare)."""
    levels, info, n_out = {}, {}, ctx.targets.shape[1]
    for name, path in inputs.items():
        manifest = read_manifest(path)
        info[name] = info[f"{name} (no TTA)"] = manifest["metrics"]
        fold0 = read_manifest(ctx.root / manifest["inputs"]["train"]["path"] / "fold0")
        teacher = fold0.get("inputs", {}).get("teacher")
        if teacher is not None:
            level = f"teacher of {name}: {fold0['config']['distill']['teacher']}"
            p = load_predictions(ctx.root / teacher["path"], ctx.train.ids, ctx.test.ids, n_out)
            levels[level], info[level] = ("distillation teacher", p.oof, p.test), read_manifest(
                ctx.root / teacher["path"])["metrics"]
    for r in range(ctx.cfg.pseudo.round):
        try:
            path = stack_dir(with_round(ctx, r)).path
        except PipelineError:
            continue
        if is_complete(path):
            p = load_predictions(path, ctx.train.ids, ctx.test.ids, n_out)
            levels[f"round {r}: {read_manifest(path)['output']}"] = ("earlier pseudo-label round", p.oof, p.test)
    return levels, info


def level_arrays(levels: dict) -> dict:
    """levels_test.npz's arrays: each level's test predictions, float32; kept classes (predict.keep_top) as
    <level> (their probabilities) and <level>_classes."""
    arrays = {}
    for name, (_, _, test) in levels.items():
        if isinstance(test, TopProbs):
            arrays[name], arrays[f"{name}{CLASSES_SUFFIX}"] = test.probs, test.classes
        else:
            arrays[name] = test.astype(np.float32)
    return arrays


def show_report(path) -> None:
    report = pd.read_csv(path / "report.csv").fillna({"output": ""})
    print(format_report(report, read_manifest(path)["metric"]), flush=True)


def run(ctx):
    target = stack_dir(ctx)
    path, inputs = target.path, target.inputs
    if is_complete(path):
        log.info(f"stack up to date: {path}")
        show_report(path)
        return path
    refs = {name: input_ref(p, ctx.root) for name, p in inputs.items()}
    fold_key = require_same_folds({n: r["fold_key"] for n, r in refs.items()}, "stack inputs")
    comp, names = ctx.cfg.competition, output_names(ctx.cfg.competition)
    preds = {n: load_predictions(p, ctx.train.ids, ctx.test.ids, len(names)) for n, p in inputs.items()}
    folds = next(iter(preds.values())).folds
    if any(not np.array_equal(p.folds, folds) for p in preds.values()):
        raise PipelineError(f"stack inputs share fold key {fold_key} but assign rows to folds differently")
    levels, fitted, (model, tests, test_meta) = level_two(ctx, preds, folds)
    output = level_name(ctx.cfg.stack.method)
    _, oof, test = levels[output]
    thresholds = thresholds_for(comp, ctx.cfg.stack, ctx.targets, oof)
    references, info = reference_levels(ctx, inputs)
    levels.update(references)
    report = level_report(levels, ctx.targets, folds, comp, output, thresholds, info)
    print(format_report(report, comp.metric), flush=True)
    with staging(path) as tmp:
        write_predictions(tmp, ctx.train.ids, ctx.test.ids, names, Predictions(oof, test, folds))
        atomic_write_csv(tmp / "report.csv", report)
        plot_levels(report, comp.metric, tmp / "report.png", f"{ctx.comp}: level 1 and 2 CV")
        with atomic_writer(tmp / "levels_test.npz") as f:
            np.savez(f, **level_arrays(levels))
        if thresholds is not None:
            write_thresholds(tmp, threshold_names(comp, names), thresholds)
        level2 = save_checked(tmp / LEVEL_DIR, model, tests, test_meta, test)
        meta = list(ctx.cfg.stack.meta_features) if test_meta is not None else []
        tabular = list(comp.tabular_cols) if test_meta is not None else []
        write_manifest(tmp, "stack", path.name, sections(ctx.cfg, ["stack"]), fold_key=fold_key, inputs=refs,
                       metrics={row.level: row.cv for row in report.itertuples()}, metric=comp.metric,
                       output=output, fitted=fitted, rows=rows_record(ctx.train.ids, ctx.test.ids),
                       level2=dict(level2, method=ctx.cfg.stack.method, meta_features=meta,
                                   tabular_cols=tabular),
                       pseudo_round=ctx.cfg.pseudo.round)
    tracking.log_stage(ctx, "stack", path.name, {row.level: row.cv for row in report.itertuples()}, report,
                       [path / "report.png", path / "report.csv"])
    log.info(f"wrote {output} of {len(inputs)} experiment(s) + report.csv -> {path}")
    return path
