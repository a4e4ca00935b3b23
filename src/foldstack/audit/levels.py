"""Audit checks of what is built on level 1: a stack's inputs and folds are its level-1 inputs' and the split's;
a pseudo-label set holds test ids only (never a train id, so never a validation row) and trains models on its
own folds."""
from pathlib import Path

from ..artifacts import MANIFEST, read_manifest
from ..utils.io import read_csv
from .auditor import Auditor
from .report import quote_ids


def check_stack(a: Auditor, path: Path) -> None:
    rel = a.rel(path)
    m = read_manifest(path)
    split = a.splits.get(m["fold_key"])
    ok = True
    for name, ref in m.get("inputs", {}).items():
        src = a.root / ref["path"]
        actual = read_manifest(src).get("fold_key") if (src / MANIFEST).is_file() else None
        if ref.get("fold_key") != m["fold_key"] or actual != m["fold_key"]:
            on = actual if actual != m["fold_key"] else ref.get("fold_key")
            a.add("stacks", "FAIL", rel, f"input {name} ({ref['path']}) is on folds {on}, the stack on "
                                         f"{m['fold_key']}: its OOF rows are not out-of-fold for the stack's "
                                         f"meta-models")
            ok = False
    if split is None:
        a.add("stacks", "FAIL", rel, f"built on folds {m['fold_key']}, which are not on disk")
        return
    folds = a.prediction_folds(path, split, "stacks")
    if folds is None:
        return
    ok &= a.fold_mismatch("stacks", f"{rel}/folds.npy", folds, split, split.csv)
    for name, ref in m.get("inputs", {}).items():
        src = a.root / ref["path"]
        if not (src / "folds.npy").is_file():
            a.add("stacks", "FAIL", rel, f"input {name}: {ref['path']}/folds.npy is missing")
            ok = False
            continue
        ok &= a.same_folds("stacks", src, split, folds, f"{rel}/folds.npy", lambda level1, i, bad: (
            f"id {split.ids[i]!r} is in fold {folds[i]} here but in fold {level1[i]} of level 1 input {name} "
            f"({ref['path']}/folds.npy; {len(bad)} row(s))"))
    if ok:
        a.add("stacks", "PASS", rel, f"{len(m.get('inputs', {}))} input(s) ({', '.join(m.get('inputs', {}))}) "
                                     f"on its folds {split.key}; its folds equal level 1's for all "
                                     f"{len(split.ids)} ids")


def check_pseudo(a: Auditor, path: Path, model_dirs: list[Path]) -> None:
    rel, ctx = a.rel(path), a.ctx
    m = read_manifest(path)
    frame = read_csv(path / "pseudo.csv", "pseudo-label set")
    ids = frame["id"].astype(str).tolist() if "id" in frame.columns else []
    test = set(ctx.test.ids)
    split = a.splits.get(m.get("fold_key"))
    train_fold = dict(zip(ctx.train.ids, [None] * len(ctx.train.ids)))
    if split is not None:
        train_fold.update(split.fold_of)
    ok = True
    in_train = [i for i in ids if i in train_fold]
    if in_train:
        i = in_train[0]
        where = (f"validation fold {train_fold[i]} of {split.csv}" if train_fold[i] is not None
                 else ctx.train.source)
        a.add("pseudo", "FAIL", f"{rel}/pseudo.csv", f"id {i!r} is a train id ({where}): its pseudo label would "
                                                     f"train the models that validate on it ({len(in_train)} "
                                                     f"such id(s): {quote_ids(in_train)})",
              rows=in_train, count=len(in_train))
        ok = False
    not_test = [i for i in ids if i not in test and i not in train_fold]
    if not_test:
        a.add("pseudo", "FAIL", f"{rel}/pseudo.csv", f"id {not_test[0]!r} is not a test id of "
                                                     f"{ctx.test.source} ({len(not_test)} such id(s))",
              rows=not_test, count=len(not_test))
        ok = False
    repeated = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    if repeated:
        a.add("pseudo", "FAIL", f"{rel}/pseudo.csv", f"id {repeated[0]!r} is listed more than once "
                                                     f"({len(repeated)} such id(s))", rows=repeated,
              count=len(repeated))
        ok = False
    source = m.get("inputs", {}).get("source", {})
    if source.get("fold_key") not in (None, m.get("fold_key")):
        a.add("pseudo", "FAIL", rel, f"its source {source.get('path')} is on folds {source['fold_key']}, the "
                                     f"set on {m.get('fold_key')}")
        ok = False
    users = [d for d in model_dirs if read_manifest(d).get("inputs", {}).get("pseudo", {}).get("key") == path.name]
    for d in users:
        if read_manifest(d).get("fold_key") != m.get("fold_key"):
            a.add("pseudo", "FAIL", a.rel(d), f"trains on {rel} (selected on folds {m.get('fold_key')}) but "
                                              f"validates on folds {read_manifest(d).get('fold_key')}")
            ok = False
    if ok:
        a.add("pseudo", "PASS", rel, f"{len(ids)} pseudo-label rows, all test ids (none a train id, so none in "
                                     f"a validation fold); {len(users)} model fold(s) train on it, on its folds "
                                     f"{m.get('fold_key')}")
    pseudo_duplicates(a, rel, ids)


def pseudo_duplicates(a: Auditor, rel: str, ids: list) -> None:
    """A pseudo row whose image is byte-identical to a train image puts that image, labelled by the source's
    models, into the training part of the fold that validates on it."""
    if a.hashes is None:
        return
    train_h, test_h = a.hashes
    train_of = {h: i for i, h in reversed(list(enumerate(train_h)))}  # each hash's first train row
    test_row = {t: r for r, t in enumerate(a.ctx.test.ids)}
    pairs = [(i, a.ctx.train.ids[train_of[test_h[test_row[i]]]]) for i in ids
             if i in test_row and test_h[test_row[i]] in train_of]
    if pairs:
        shown = ", ".join(f"test {a!r} = train {b!r}" for a, b in pairs[:3])
        a.add("pseudo", "WARN", f"{rel}/pseudo.csv", f"{len(pairs)} pseudo row(s) are byte-identical to train "
                                                     f"images ({shown}): every fold trains on them, including "
                                                     f"the fold that validates on their train twin",
              rows=[a for a, _ in pairs], count=len(pairs))
