"""Audit checks of byte-identical images: across train and test, within each, and across the folds of every split
(a FAIL where folds.dedupe promised otherwise). The hashes are kept for the pseudo-label check."""
import numpy as np

from ..artifacts import artifact_path
from .auditor import Auditor, Split
from .duplicates import content_hashes, duplicate_sets
from .report import quote_ids


def check_duplicates(a: Auditor) -> None:
    ctx = a.ctx
    cache = artifact_path(ctx.root, "cache", ctx.comp, "x").parent
    progress = ctx.cfg.runtime.progress
    train_h = content_hashes(ctx.train.samples, cache, progress, "hashing train images")
    test_h = content_hashes(ctx.test.samples, cache, progress, "hashing test images")
    a.hashes = (train_h, test_h)
    train_ids, test_ids = ctx.train.ids, ctx.test.ids
    first_train = {h: i for i, h in reversed(list(enumerate(train_h)))}  # each hash's first train row
    cross = [(train_ids[first_train[h]], test_ids[j]) for j, h in enumerate(test_h) if h in first_train]
    test_set = set(test_h)
    n_train_twins = sum(1 for h in train_h if h in test_set)
    if cross:
        shown = ", ".join(f"train {a!r} = test {b!r}" for a, b in cross[:3])
        a.add("duplicates", "INFO", "", f"train/test: {len(cross)} of {len(test_ids)} test images are "
                                        f"byte-identical to {n_train_twins} train images ({shown})",
              rows=[b for _, b in cross], count=len(cross))
    else:
        a.add("duplicates", "PASS", "", f"train/test: no test image is byte-identical to a train image "
                                        f"({len(train_ids)} train, {len(test_ids)} test files hashed)")
    sets = duplicate_sets(train_h)
    test_sets = duplicate_sets(test_h)
    y = ctx.targets
    conflicts = [s for s in sets if any(not np.array_equal(y[s[0]], y[j]) for j in s[1:])]
    msg = (f"within train: {sum(map(len, sets))} images in {len(sets)} sets of byte-identical files"
           + (f", {len(conflicts)} set(s) with different labels (e.g. "
              f"{quote_ids(train_ids[j] for j in conflicts[0])})" if conflicts else "")
           + (f"; within test: {sum(map(len, test_sets))} images in {len(test_sets)} sets" if test_sets else ""))
    a.add("duplicates", "INFO" if sets or test_sets else "PASS", "", msg,
          rows=[train_ids[s[0]] for s in sets], count=len(sets))
    fingerprint = ctx.train.fingerprint()
    for split in a.splits.values():
        split_duplicates(a, split, sets, fingerprint)


def split_duplicates(a: Auditor, split: Split, sets: list, fingerprint: str) -> None:
    if split.ids != a.ctx.train.ids or split.manifest.get("inputs", {}).get("train", {}).get(
            "fingerprint") != fingerprint:
        a.add("duplicates", "SKIP", split.csv, "built from other train data than the current "
                                               f"{a.ctx.train.source}: not checked")
        return
    crossing = [s for s in sets if len({split.folds[i] for i in s}) > 1]
    cfg = split.manifest.get("config", {})
    dedupe = bool(cfg.get("folds", {}).get("dedupe", False))
    if not crossing:
        a.add("duplicates", "PASS", split.csv, f"no set of byte-identical train images crosses folds "
                                               f"({len(sets)} set(s){', folds.dedupe' if dedupe else ''})")
        return
    pairs = [(split.ids[s[0]], split.ids[j]) for s in crossing for j in s[1:]
             if split.folds[j] != split.folds[s[0]]]
    shown = ", ".join(f"{a!r} (fold {split.fold_of[a]}) = {b!r} (fold {split.fold_of[b]})" for a, b in pairs[:3])
    status = "FAIL" if dedupe else "WARN"
    hint = ("although folds.dedupe is on" if dedupe else
            "a model validates on images it trained on: set folds.dedupe=true")
    a.add("duplicates", status, split.csv, f"{len(crossing)} set(s) of byte-identical train images cross folds, "
                                           f"{len(pairs)} pair(s) ({shown}); {hint}",
          rows=[b for _, b in pairs], count=len(pairs))
