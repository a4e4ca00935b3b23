"""Audit checks of the models and the rows they predicted: every model fold validated on the fold its folder
names, every OOF row predicted by the model whose validation fold held it (once), and every distilled student's
soft targets predicted on the student's folds."""
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts import MANIFEST, read_manifest
from ..utils.io import read_csv
from .auditor import Auditor, Split
from .report import quote_ids


def check_models(a: Auditor, fold_dirs: list[Path]) -> None:
    """Every model fold folder: fold == its folder's k, on a split on disk, validated on that fold's rows."""
    by_train: dict[Path, list] = {}
    for d in fold_dirs:
        by_train.setdefault(d.parent, []).append(d)
    for train_dir, dirs in by_train.items():
        problems, sizes, fold_keys = 0, {}, set()
        for d in sorted(dirs, key=lambda p: p.name):
            rel = a.rel(d)
            m = read_manifest(d)
            match = re.fullmatch(r"fold(\d+)", d.name)
            k = int(match.group(1)) if match else None
            fold_keys.add(m.get("fold_key"))
            split = a.splits.get(m.get("fold_key"))
            if m.get("fold") != k:
                problems += 1
                a.add("models", "FAIL", rel, f"its manifest says it validated on fold {m.get('fold')}, the "
                                             f"folder (and every OOF row it predicts) is fold {k}")
                continue
            if split is None:
                problems += 1
                a.add("models", "FAIL", rel, f"trained on folds {m.get('fold_key')}, which are not on disk "
                                             f"(folds/{a.comp}/{m.get('fold_key')}): its validation rows "
                                             f"cannot be checked")
                continue
            expected = int((split.folds == k).sum())
            got = m.get("metrics", {}).get("valid_rows")
            if got is not None and got != expected:
                problems += 1
                a.add("models", "FAIL", rel, f"validated on {got} rows; fold {k} of {split.csv} has {expected}")
                continue
            sizes[k] = got
        if len(fold_keys) > 1:
            problems += 1
            a.add("models", "FAIL", a.rel(train_dir), f"its folds were trained on different splits "
                                                      f"{sorted(map(str, fold_keys))}")
        if not problems:
            [key] = fold_keys
            a.add("models", "PASS", a.rel(train_dir),
                  f"fold(s) {sorted(sizes)} each validated on that fold of folds/{a.comp}/{key} "
                  f"(valid rows {'/'.join(str(sizes[k]) for k in sorted(sizes))})")


def check_oof(a: Auditor, path: Path) -> None:
    rel = a.rel(path)
    m = read_manifest(path)
    split = a.splits.get(m["fold_key"])
    if split is None:
        a.add("oof", "FAIL", rel, f"built on folds {m['fold_key']}, which are not on disk: its rows cannot be "
                                  f"traced to a validation fold")
        return
    folds = a.prediction_folds(path, split, "oof")
    if folds is None:
        return
    ok = a.fold_mismatch("oof", f"{rel}/folds.npy", folds, split, split.csv)
    csv = path / "oof.csv"
    if csv.is_file():
        frame = read_csv(csv, "OOF copy")
        ids = frame["id"].tolist() if "id" in frame.columns else []
        if ids != split.ids:
            wrong = next((i for i, (a, b) in enumerate(zip(ids, split.ids)) if a != b),
                         min(len(ids), len(split.ids)))
            shown = ids[wrong] if wrong < len(ids) else split.ids[wrong]
            a.add("oof", "FAIL", f"{rel}/oof.csv", f"row {wrong + 2}: id {shown!r} where {split.csv} has "
                                                   f"{(split.ids + [None])[wrong]!r} ({len(ids)} vs "
                                                   f"{len(split.ids)} ids)", rows=[shown], count=1)
            ok = False
        elif "fold" in frame.columns:
            ok &= a.fold_mismatch("oof", f"{rel}/oof.csv", pd.to_numeric(frame["fold"], errors="coerce")
                                  .fillna(-1).to_numpy(np.int64), split, split.csv)
    # every train id predicted exactly once: one finite row per id
    oof = np.load(path / "oof.npy", mmap_mode="r", allow_pickle=False)
    if oof.shape[0] != len(split.ids):
        a.add("oof", "FAIL", f"{rel}/oof.npy", f"{oof.shape[0]} rows for {len(split.ids)} train ids")
        return
    unpredicted = np.concatenate([np.flatnonzero(~np.isfinite(oof[s:s + 8192]).all(axis=tuple(range(1, oof.ndim))))
                                  + s for s in range(0, len(oof), 8192)] or [np.zeros(0, np.int64)])
    if len(unpredicted):
        i = unpredicted[0]
        a.add("oof", "FAIL", f"{rel}/oof.npy", f"id {split.ids[i]!r} has no prediction (non-finite row; "
                                               f"{len(unpredicted)} such rows)",
              rows=[split.ids[j] for j in unpredicted], count=len(unpredicted))
        ok = False
    ok &= check_predictors(a, path, m, split, folds)
    if ok:
        a.add("oof", "PASS", rel, f"{len(split.ids)} train ids each predicted once, by the model of the fold "
                                  f"that held it out ({m['inputs']['train']['path']}/fold0.."
                                  f"{split.n_splits - 1}, folds {split.key})")


def check_predictors(a: Auditor, path: Path, m: dict, split: Split, folds: np.ndarray) -> bool:
    """Fold k's OOF rows came from <train folder>/fold<k>: that model validated on fold k of the same split."""
    rel, train_dir, ok = a.rel(path), a.root / m["inputs"]["train"]["path"], True
    for k in range(split.n_splits):
        rows = np.flatnonzero(folds == k)
        if not len(rows):
            continue
        ids = [split.ids[i] for i in rows]
        d = train_dir / f"fold{k}"
        who = f"{len(rows)} OOF rows of fold {k} ({quote_ids(ids)})"
        if not (d / MANIFEST).is_file():
            a.add("oof", "FAIL", rel, f"{who} have no model: {a.rel(d)} is not a complete model folder",
                  rows=ids, count=len(rows))
            ok = False
            continue
        fm = read_manifest(d)
        if fm.get("fold") != k or fm.get("fold_key") != split.key:
            a.add("oof", "FAIL", rel, f"{who} were predicted by {a.rel(d)}, whose manifest says it validated "
                                      f"on fold {fm.get('fold')} of folds {fm.get('fold_key')}, not fold {k} "
                                      f"of {split.key}: that model may have trained on them",
                  rows=ids, count=len(rows))
            ok = False
        elif fm.get("metrics", {}).get("valid_rows", len(rows)) != len(rows):
            a.add("oof", "FAIL", rel, f"{who}: {a.rel(d)} validated on "
                                      f"{fm['metrics']['valid_rows']} rows", rows=ids, count=len(rows))
            ok = False
    return ok


def check_distill(a: Auditor, model_dirs: list[Path]) -> None:
    by_train: dict[Path, list] = {}
    for d in model_dirs:
        teacher = read_manifest(d).get("inputs", {}).get("teacher")
        if teacher is not None:
            by_train.setdefault(d.parent, []).append((d, teacher))
    for train_dir, items in by_train.items():
        ok, checked = True, set()
        for d, teacher in items:
            m = read_manifest(d)
            split = a.splits.get(m.get("fold_key"))
            tdir = a.root / teacher["path"]
            if (tdir, m.get("fold_key")) in checked:
                continue
            checked.add((tdir, m.get("fold_key")))
            if not (tdir / MANIFEST).is_file():
                a.add("distill", "FAIL", a.rel(d), f"its teacher's predictions {teacher['path']} are not on "
                                                   f"disk: its soft targets cannot be traced")
                ok = False
                continue
            t_key = read_manifest(tdir).get("fold_key")
            if t_key != m.get("fold_key") or split is None:
                a.add("distill", "FAIL", a.rel(d), f"teacher {teacher['path']} was predicted on folds "
                                                   f"{t_key}, the student validates on folds "
                                                   f"{m.get('fold_key')}")
                ok = False
                continue
            where = f"{teacher['path']}/folds.npy"
            ok &= a.same_folds("distill", tdir, split, split.folds, where, lambda t_folds, i, bad: (
                f"id {split.ids[i]!r}'s soft target for student {a.rel(train_dir)} comes from the teacher model "
                f"of fold {t_folds[i]}, but the student validates it in fold {split.folds[i]} ({split.csv}; "
                f"{len(bad)} row(s))"))
        if ok:
            teachers = sorted({t["path"] for _, t in items})
            a.add("distill", "PASS", a.rel(train_dir), f"soft targets from {', '.join(teachers)}: every "
                                                       f"train row's from the teacher model that held it "
                                                       f"out, on the student's folds")
