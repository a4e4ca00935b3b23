"""Stage 01: split the train rows into folds; same inputs, same folds. What the split groups and stratifies on comes
from the config (`split_inputs`); the assignment (and refusing a fold the metric cannot score) is data/splits.py's."""
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..artifacts import artifact_path, is_complete, staging, write_manifest
from ..audit.duplicates import content_hashes, duplicate_sets, union_groups
from ..config.loading import sections
from ..data.splits import assign_folds, metric_requirements, resolve_method
from ..data.table import class_index
from ..errors import PipelineError
from ..lineage import folds_dir
from ..regression import binned_labels
from ..utils.io import atomic_write_csv, stable_hash

log = logging.getLogger("foldstack")


@dataclass(frozen=True)
class SplitInputs:
    """What the split of a config uses."""
    method: str                      # the splitter (`auto` resolved)
    labels: np.ndarray | None        # single-label classes to stratify on
    multihot: np.ndarray | None      # multilabel tags to stratify on
    groups: np.ndarray | None        # rows of a group share a fold
    group_desc: str                  # what the groups are, for messages
    duplicates: dict | None          # folds.dedupe: duplicate sets and rows, the content hash


def split_inputs(ctx) -> SplitInputs:
    comp, cfg = ctx.cfg.competition, ctx.cfg.folds
    group_values = ctx.train.frame[comp.group_col].to_numpy() if comp.group_col else None
    groups, dup_info = None, None
    desc = f"groups of competition.group_col {comp.group_col!r}"
    if cfg.dedupe:
        cache = artifact_path(ctx.root, "cache", ctx.comp, "x").parent
        hashes = content_hashes(ctx.train.samples, cache, ctx.cfg.runtime.progress, "hashing train images (dedupe)")
        dups = duplicate_sets(hashes)  # [[row, ...], ...]
        dup_info = dict(duplicate_sets=len(dups), duplicate_rows=sum(map(len, dups)),
                        content_hash=stable_hash(hashes, 16))
        if dups:
            desc = (f"groups (competition.group_col {comp.group_col!r} joined with identical images)"
                    if comp.group_col else "groups of identical images (folds.dedupe)")
            groups = union_groups(len(hashes), group_values, hashes)
            log.info(f"folds.dedupe: {dup_info['duplicate_rows']} train images in {len(dups)} sets of byte-identical "
                     f"files are kept in one fold each")
        else:
            log.info("folds.dedupe: no byte-identical train images")
    if groups is None:
        groups = group_values  # as read: the splitters' group order (hence the folds) is what it always was
    task = comp.task
    method = resolve_method(cfg.method, task if task == "multilabel" else "single", comp.group_col is not None,
                            groups is not None, ctx.targets.shape if task == "multilabel" else None)
    if dup_info and dup_info["duplicate_sets"] and method in ("kfold", "stratified"):
        raise PipelineError(f"folds.dedupe=true with folds.method={method}: {method} ignores groups, so the "
                            f"{dup_info['duplicate_rows']} byte-identical train images could straddle folds; use "
                            f"folds.method=auto (or a group-aware method)")
    # single-label: the class index straight from the table, never the (N, K) one-hot (52 GB for herbarium)
    labels = (binned_labels(ctx.targets) if task == "regression"  # quantile bins of the target, stratified
              else class_index(ctx.train, comp) if task != "multilabel" else None)
    multihot = ctx.targets if task == "multilabel" else None
    return SplitInputs(method, labels, multihot, groups, desc, dup_info)


def run(ctx):
    path = folds_dir(ctx)
    if is_complete(path):
        log.info(f"folds up to date: {path}")
        return path
    comp, cfg = ctx.cfg.competition, ctx.cfg.folds
    split = split_inputs(ctx)
    classes = [] if comp.task == "regression" else comp.classes  # a regression's labels are quantile bins
    needs = metric_requirements(split.multihot if split.labels is None else split.labels, comp.task, comp.metric,
                                classes)
    folds = assign_folds(len(ctx.train), cfg.n_splits, cfg.seed, split.method, split.labels, split.groups,
                         split.multihot, needs, classes, ctx.train.source, split.group_desc)
    sizes = np.bincount(folds, minlength=cfg.n_splits).tolist()
    metrics = {"fold_sizes": sizes, "method": split.method,
               **({"dedupe": split.duplicates} if split.duplicates else {})}
    with staging(path) as tmp:
        atomic_write_csv(tmp / "folds.csv", pd.DataFrame({"id": ctx.train.ids, "fold": folds}))
        write_manifest(tmp, "folds", path.name, sections(ctx.cfg, ["competition", "folds"]), fold_key=path.name,
                       inputs={"train": dict(path=ctx.train.source, fingerprint=ctx.train.fingerprint())},
                       metrics=metrics)
    grouped = f"; {split.group_desc} kept whole" if split.groups is not None else ""  # patients never straddle
    log.info(f"wrote {cfg.n_splits} folds ({split.method}{grouped}, sizes {sizes}) -> {path}")
    return path
