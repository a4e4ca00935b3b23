"""Stage 02: train one fold or all folds into models/<comp>/<exp>/<key>/fold<k>/, which exists only complete: a fold
trains in `.fold<k>.partial/` beside it (a killed run resumes from its last.pt) and is renamed once its manifest is
written. With pseudo.round = n the folds also train on round n's pseudo-labelled test rows; with distill.teacher,
on the teacher's OOF probabilities. Validation is always the fold's real train rows alone, so OOF CV stays
comparable. The manifest records the hub weights the backbone started from, or why it trained from scratch."""
import logging
import time

import numpy as np

from .. import tracking
from ..artifacts import is_complete, resumable_staging, write_manifest
from ..config.loading import sections
from ..errors import PipelineError
from ..lineage import TRAIN_SECTIONS, load_folds, train_dir
from ..predictions import load_predictions
from ..pseudo.select import hard_targets
from ..utils.io import load_npy, read_csv
from ..wide import ClassTargets, refuse_dense

log = logging.getLogger("foldstack")


def pseudo_rows(ctx, ref: dict):
    """(test row indices, targets) of a pseudo-label set; every id must be a test row."""
    folder = ctx.root / ref["path"]
    ids = read_csv(folder / "pseudo.csv", "pseudo-label set")["id"].astype(str).tolist()
    row_of = {i: r for r, i in enumerate(ctx.test.ids)}
    unknown = [i for i in ids if i not in row_of]
    if unknown:
        raise PipelineError(f"{folder / 'pseudo.csv'}: id {unknown[0]!r} is not a test row of {ctx.test.source}")
    targets = load_npy(folder / "targets.npy", "pseudo targets")
    if isinstance(ctx.targets, ClassTargets):  # predict.keep_top: hard labels as class indices
        if targets.shape != (len(ids),) or targets.dtype.kind not in "iu":
            raise PipelineError(f"{folder / 'targets.npy'}: shape {targets.shape} {targets.dtype}, expected "
                                f"({len(ids)},) class indices (predict.keep_top)")
        return np.array([row_of[i] for i in ids], dtype=np.int64), ClassTargets(targets, ctx.targets.shape[1])
    if targets.shape != (len(ids), ctx.targets.shape[1]):
        raise PipelineError(f"{folder / 'targets.npy'}: shape {targets.shape}, expected ({len(ids)}, "
                            f"{ctx.targets.shape[1]})")
    return np.array([row_of[i] for i in ids], dtype=np.int64), targets.astype(np.float32)


def training_rows(ctx, inputs: dict, folds: np.ndarray):
    """(extra rows or None, teacher OOF for the train rows or None) from the train folder's inputs."""
    from ..engine.fold import ExtraRows

    extra = teacher = None
    if "pseudo" in inputs:
        index, targets = pseudo_rows(ctx, inputs["pseudo"])
        extra = ExtraRows(ctx.images.test_rows(index), targets, ctx.cfg.pseudo.weight)
    if "teacher" in inputs:
        if ctx.keep_top:
            refuse_dense("distillation (distill.teacher: its soft targets)")
        k = ctx.targets.shape[1]
        preds = load_predictions(ctx.root / inputs["teacher"]["path"], ctx.train.ids, ctx.test.ids, k)
        if not np.array_equal(preds.folds, folds):  # row i's soft label must come from the model that held i out
            raise PipelineError(f"distill.teacher {inputs['teacher']['path']}: its OOF rows were predicted on "
                                f"other folds than the student's")
        teacher = preds.oof.astype(np.float32)
        if ctx.cfg.distill.test_rows:  # hard part: the teacher's label (a test row has no true one)
            test, comp = preds.test.astype(np.float32), ctx.cfg.competition
            hard = hard_targets(test, comp.task, comp.tag_threshold)
            extra = ExtraRows(ctx.images.test_rows(np.arange(len(test))), np.hstack([hard, test]))
    return extra, teacher


def pretrained_record(ctx) -> tuple:
    """(the hub weights file every fold starts from or None, what each fold's manifest records about it or None).
    Under `auto` without weights, says once that the models train from scratch, and why."""
    from ..models.hub import scratch_reason

    w = ctx.weights
    if w is not None:
        log.info(f"{ctx.exp}: pretrained weights {w.repo_id}/{w.filename} (sha256 {w.sha256[:12]}...)")
        return w.path, dict(source="hub", repo_id=w.repo_id, filename=w.filename, sha256=w.sha256)
    reason = scratch_reason(ctx.cfg.model, ctx.root, ctx.download)
    if reason is None:
        return None, None
    log.info(reason)
    return None, dict(source="scratch", reason=reason)


def add_arguments(p) -> None:
    p.add_argument("--prepare", action="store_true",
                   help="build what the folds share (the decoded-image cache), print the folds left to train, exit: "
                        "`make train -j DEVICES=...` runs them in parallel")


def run(ctx, on_epoch=None, budget=None):
    """on_epoch: engine.training.train_fold's per-epoch hook, for every fold trained here (a sweep's ASHA).
    budget: a budget.tracking.FoldBudget (`make all BUDGET=...`): each fold gets the epochs that fit what is left."""
    split = load_folds(ctx)
    target = train_dir(ctx, split.key)
    fold_key, folds, path, inputs = split.key, split.folds, target.path, target.inputs
    n = ctx.cfg.folds.n_splits
    if ctx.fold is not None and not 0 <= ctx.fold < n:
        raise PipelineError(f"FOLD={ctx.fold} is out of range: folds are 0..{n - 1}")
    todo = [k for k in ([ctx.fold] if ctx.fold is not None else range(n)) if not is_complete(path / f"fold{k}")]
    if getattr(ctx.args, "prepare", False):
        if todo:
            ctx.images  # noqa: B018  (built once here, not raced for by every fold process)
        print(" ".join(map(str, todo)))
        return path
    if not todo:
        log.info(f"{ctx.exp}: fold(s) up to date: {path}")
        return path
    from .. import distributed as dist
    from ..engine.training import train_fold  # torch: only when there is something to train (a no-op stays fast)

    weights, pretrained = pretrained_record(ctx)
    ctx.targets  # decode targets now: a bad label fails before any training
    ctx.images  # noqa: B018  (and the images: a file that does not decode fails before any fold folder exists)
    extra, teacher = training_rows(ctx, inputs, folds)
    if extra is not None:
        log.info(f"{ctx.exp}: + {len(extra.rows)} test rows in every fold's training part "
                 f"({'pseudo-label round ' + str(ctx.cfg.pseudo.round) if 'pseudo' in inputs else 'teacher-labelled'})")
    for j, k in enumerate(todo):
        final = path / f"fold{k}"
        tracker = tracking.Run(ctx, f"fold{k}", path.name, tags=dict(fold=k, models=final.relative_to(ctx.root),
                                                                     folds_key=fold_key))
        # torchrun: every rank trains in the work folder (and resumes from its last.pt); rank 0 alone writes the
        # manifest and renames it, and the others wait for that before going on. A fold that fails before its
        # first checkpoint leaves no folder (nor an empty models/<comp>/<exp>/<key>/).
        with tracking.failing(tracker), resumable_staging(final, main=dist.is_main(),
                                                          resumable=lambda work: (work / "last.pt").is_file()) as out:
            log.info(f"{ctx.exp}: training fold {k} of {n} -> {final} (in {out.name} until done)")
            cfg, share = (ctx.cfg, None) if budget is None else budget.configure(ctx.cfg, k, out, len(todo) - j)
            t0 = time.time()
            metrics = train_fold(cfg, ctx.images, ctx.targets, folds, k, out, extra, teacher, weights,
                                 on_epoch=on_epoch, tracker=tracker)
            if share is not None:
                budget.record(k, time.time() - t0, metrics["epochs"] - share.get("resumed_after", 0))
                metrics["budget"] = share
            if pretrained is not None:
                metrics["pretrained"] = {**pretrained, **metrics.get("pretrained", {})}
            if dist.is_main():
                write_manifest(out, "train", path.name, sections(ctx.cfg, TRAIN_SECTIONS + ["pseudo", "distill"]),
                               fold_key=fold_key, inputs=inputs, metrics=metrics, fold=k, experiment=ctx.exp,
                               pseudo_round=ctx.cfg.pseudo.round)
        dist.barrier()  # fold k is in place before any rank moves on
        tracker.finish({key: metrics[key] for key in ("best", "last", "swa", "epochs") if key in metrics},
                       sorted(final.glob("*.png")))
        log.info(f"fold {k} done: {ctx.cfg.competition.metric} last {metrics['last']:.4f} best {metrics['best']:.4f}")
    dist.cleanup()
    return path
