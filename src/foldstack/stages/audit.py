"""make audit: read every artifact of a competition on disk and prove, or refute naming the row id and the
artifact, that no validation row leaked:

- folds:      each folds.csv puts every train id in exactly one fold; the fold sizes match its manifest
- models:     each fold folder validated on the fold its name says, on a split that exists, with that many rows
- oof:        every OOF row was predicted by the model whose validation fold held it (the prediction's fold column
              equals folds.csv for every id; fold k's model folder has fold == k and the same fold key); every
              train id predicted exactly once
- stacks:     every input shares the stack's fold key, and the stack's folds equal its inputs' and folds.csv
- pseudo:     pseudo-label rows are test ids only (in the sample submission, not train ids), so never in a
              validation fold; the models trained on a set are on its folds
- distill:    a student's soft targets (its teacher's OOF) were predicted on the student's folds
- duplicates: byte-identical images across train/test and across folds (a FAIL under folds.dedupe)
- classes:    per-fold class (tag) counts; a class the metric needs missing from a validation fold is a FAIL

Prints a line per check and artifact and writes the same as audit/<comp>/audit.json. Exit 1 when a check fails."""
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts import MANIFEST, STAGE_DIRS, read_manifest
from ..audit.report import Report, quote_ids
from ..errors import PipelineError
from ..utils.io import atomic_write_json, load_npy, read_csv, stable_hash

log = logging.getLogger("foldstack")
MALFORMED = (PipelineError, KeyError, ValueError, TypeError, OSError, IndexError)


class Split:
    """One folds/<comp>/<key>/ artifact: ids in train order and the fold of each."""

    def __init__(self, path: Path, rel: str, manifest: dict, ids: list, folds: np.ndarray, n_splits: int):
        self.path, self.rel, self.manifest, self.ids, self.folds, self.n_splits = \
            path, rel, manifest, ids, folds, n_splits
        self.key = path.name
        self.fold_of = dict(zip(ids, folds.tolist()))
        self.ids_hash = stable_hash(list(ids))

    @property
    def csv(self) -> str:
        return f"{self.rel}/folds.csv"


class Audit:
    def __init__(self, ctx):
        self.ctx, self.root, self.comp = ctx, Path(ctx.root), ctx.comp
        self.report = Report(ctx.comp)
        self.splits: dict[str, Split] = {}
        self.hashes = None  # (train hashes, test hashes) once computed

    # ---------------------------------------------------------------- helpers
    def rel(self, path: Path) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return str(path)

    def complete(self, stage: str, depth: int) -> list[Path]:
        """Complete artifact folders of a stage, `depth` levels below <stage dir>/<comp>/ (no staging folders)."""
        base = self.root / STAGE_DIRS[stage] / self.comp
        found = base.glob("/".join(["*"] * depth)) if base.is_dir() else []
        return sorted(p for p in found if p.is_dir() and not any(part.startswith(".") for part in
                                                                  p.relative_to(base).parts)
                      and (p / MANIFEST).is_file())

    def add(self, *args, **kwargs):
        self.report.add(*args, **kwargs)

    def prediction_folds(self, folder: Path, split: Split, check: str) -> np.ndarray | None:
        """A prediction folder's per-row folds (folds.npy), if they belong to the split's rows; else a FAIL."""
        rel = self.rel(folder)
        manifest = read_manifest(folder)
        rows = manifest.get("rows")
        if rows is not None and rows.get("train_ids") != split.ids_hash:
            self.add(check, "FAIL", rel, f"predictions were made for other train rows ({rows.get('train')}) than "
                                         f"{split.csv} ({len(split.ids)} ids)")
            return None
        folds = load_npy(folder / "folds.npy", "prediction folds")
        if folds.shape != (len(split.ids),):
            self.add(check, "FAIL", f"{rel}/folds.npy", f"{folds.shape[0] if folds.ndim else 0} rows, "
                                                        f"{split.csv} has {len(split.ids)} train ids")
            return None
        return folds.astype(np.int64)

    def fold_mismatch(self, check: str, where: str, folds: np.ndarray, split: Split, against: str) -> bool:
        """FAIL naming the rows whose fold in `where` differs from `against` (split.folds); True if all agree."""
        bad = np.flatnonzero(folds != split.folds)
        if not len(bad):
            return True
        i = bad[0]
        shown = quote_ids(split.ids[j] for j in bad)
        self.add(check, "FAIL", where, f"id {split.ids[i]!r} is in fold {folds[i]} here but in fold {split.folds[i]} "
                                       f"of {against} ({len(bad)} row(s) differ: {shown})",
                 rows=[split.ids[j] for j in bad], count=len(bad))
        return False

    # ---------------------------------------------------------------- folds
    def check_folds(self, path: Path) -> None:
        rel = self.rel(path)
        manifest = read_manifest(path)
        frame = read_csv(path / "folds.csv", "folds file")
        missing = [c for c in ("id", "fold") if c not in frame.columns]
        if missing:
            self.add("folds", "FAIL", f"{rel}/folds.csv", f"missing column(s) {missing}")
            return
        ids = frame["id"].tolist()
        n_splits = int(manifest.get("config", {}).get("folds", {}).get("n_splits", 0))
        dup = frame.index[frame["id"].duplicated()]
        if len(dup):
            first = ids[dup[0]]
            self.add("folds", "FAIL", f"{rel}/folds.csv", f"id {first!r} is in {frame['id'].eq(first).sum()} rows "
                                                          f"({len(dup)} repeated id(s)): a row in two folds",
                     rows=[ids[i] for i in dup], count=len(dup))
            return
        fold = pd.to_numeric(frame["fold"], errors="coerce")
        bad = frame.index[fold.isna() | (fold < 0) | (fold >= max(n_splits, 1)) | (fold % 1 != 0)]
        if len(bad):
            self.add("folds", "FAIL", f"{rel}/folds.csv", f"id {ids[bad[0]]!r} has fold {frame['fold'][bad[0]]!r}, "
                                                          f"not one of 0..{n_splits - 1} ({len(bad)} row(s))",
                     rows=[ids[i] for i in bad], count=len(bad))
            return
        folds = fold.to_numpy(np.int64)
        sizes = np.bincount(folds, minlength=n_splits).tolist()
        self.splits[path.name] = split = Split(path, rel, manifest, ids, folds, n_splits)
        recorded = manifest.get("metrics", {}).get("fold_sizes")
        empty = [k for k, s in enumerate(sizes) if s == 0]
        if empty:
            self.add("folds", "FAIL", f"{rel}/folds.csv", f"validation fold(s) {empty} hold no train row")
        elif recorded is not None and recorded != sizes:
            self.add("folds", "FAIL", f"{rel}/folds.csv", f"fold sizes {sizes} differ from its manifest's {recorded}: "
                                                          f"the file changed after it was written")
        else:
            method = manifest.get("metrics", {}).get("method", manifest["config"]["folds"].get("method"))
            self.add("folds", "PASS", split.rel, f"{len(ids)} train ids, each in exactly one of {n_splits} folds "
                                                 f"(sizes {'/'.join(map(str, sizes))}; {method})")

    # ---------------------------------------------------------------- models
    def check_models(self, fold_dirs: list[Path]) -> None:
        """Every model fold folder: fold == its folder's k, on a split on disk, validated on that fold's rows."""
        by_train: dict[Path, list] = {}
        for d in fold_dirs:
            by_train.setdefault(d.parent, []).append(d)
        for train_dir, dirs in by_train.items():
            problems, sizes, fold_keys = 0, {}, set()
            for d in sorted(dirs, key=lambda p: p.name):
                rel = self.rel(d)
                m = read_manifest(d)
                match = re.fullmatch(r"fold(\d+)", d.name)
                k = int(match.group(1)) if match else None
                fold_keys.add(m.get("fold_key"))
                split = self.splits.get(m.get("fold_key"))
                if m.get("fold") != k:
                    problems += 1
                    self.add("models", "FAIL", rel, f"its manifest says it validated on fold {m.get('fold')}, the "
                                                    f"folder (and every OOF row it predicts) is fold {k}")
                    continue
                if split is None:
                    problems += 1
                    self.add("models", "FAIL", rel, f"trained on folds {m.get('fold_key')}, which are not on disk "
                                                    f"(folds/{self.comp}/{m.get('fold_key')}): its validation rows "
                                                    f"cannot be checked")
                    continue
                expected = int((split.folds == k).sum())
                got = m.get("metrics", {}).get("valid_rows")
                if got is not None and got != expected:
                    problems += 1
                    self.add("models", "FAIL", rel, f"validated on {got} rows; fold {k} of {split.csv} has {expected}")
                    continue
                sizes[k] = got
            if len(fold_keys) > 1:
                problems += 1
                self.add("models", "FAIL", self.rel(train_dir), f"its folds were trained on different splits "
                                                                f"{sorted(map(str, fold_keys))}")
            if not problems:
                [key] = fold_keys
                self.add("models", "PASS", self.rel(train_dir),
                         f"fold(s) {sorted(sizes)} each validated on that fold of folds/{self.comp}/{key} "
                         f"(valid rows {'/'.join(str(sizes[k]) for k in sorted(sizes))})")

    # ---------------------------------------------------------------- oof
    def check_oof(self, path: Path) -> None:
        rel = self.rel(path)
        m = read_manifest(path)
        split = self.splits.get(m["fold_key"])
        if split is None:
            self.add("oof", "FAIL", rel, f"built on folds {m['fold_key']}, which are not on disk: its rows cannot be "
                                         f"traced to a validation fold")
            return
        folds = self.prediction_folds(path, split, "oof")
        if folds is None:
            return
        ok = self.fold_mismatch("oof", f"{rel}/folds.npy", folds, split, split.csv)
        csv = path / "oof.csv"
        if csv.is_file():
            frame = read_csv(csv, "OOF copy")
            ids = frame["id"].tolist() if "id" in frame.columns else []
            if ids != split.ids:
                wrong = next((i for i, (a, b) in enumerate(zip(ids, split.ids)) if a != b),
                             min(len(ids), len(split.ids)))
                shown = ids[wrong] if wrong < len(ids) else split.ids[wrong]
                self.add("oof", "FAIL", f"{rel}/oof.csv", f"row {wrong + 2}: id {shown!r} where {split.csv} has "
                                                          f"{(split.ids + [None])[wrong]!r} ({len(ids)} vs "
                                                          f"{len(split.ids)} ids)", rows=[shown], count=1)
                ok = False
            elif "fold" in frame.columns:
                ok &= self.fold_mismatch("oof", f"{rel}/oof.csv", pd.to_numeric(frame["fold"], errors="coerce")
                                         .fillna(-1).to_numpy(np.int64), split, split.csv)
        # every train id predicted exactly once: one finite row per id
        oof = np.load(path / "oof.npy", mmap_mode="r", allow_pickle=False)
        if oof.shape[0] != len(split.ids):
            self.add("oof", "FAIL", f"{rel}/oof.npy", f"{oof.shape[0]} rows for {len(split.ids)} train ids")
            return
        unpredicted = np.concatenate([np.flatnonzero(~np.isfinite(oof[s:s + 8192]).all(axis=tuple(range(1, oof.ndim))))
                                      + s for s in range(0, len(oof), 8192)] or [np.zeros(0, np.int64)])
        if len(unpredicted):
            i = unpredicted[0]
            self.add("oof", "FAIL", f"{rel}/oof.npy", f"id {split.ids[i]!r} has no prediction (non-finite row; "
                                                      f"{len(unpredicted)} such rows)",
                     rows=[split.ids[j] for j in unpredicted], count=len(unpredicted))
            ok = False
        ok &= self.check_predictors(path, m, split, folds)
        if ok:
            self.add("oof", "PASS", rel, f"{len(split.ids)} train ids each predicted once, by the model of the fold "
                                         f"that held it out ({m['inputs']['train']['path']}/fold0.."
                                         f"{split.n_splits - 1}, folds {split.key})")

    def check_predictors(self, path: Path, m: dict, split: Split, folds: np.ndarray) -> bool:
        """Fold k's OOF rows came from <train folder>/fold<k>: that model validated on fold k of the same split."""
        rel, train_dir, ok = self.rel(path), self.root / m["inputs"]["train"]["path"], True
        for k in range(split.n_splits):
            rows = np.flatnonzero(folds == k)
            if not len(rows):
                continue
            ids = [split.ids[i] for i in rows]
            d = train_dir / f"fold{k}"
            who = f"{len(rows)} OOF rows of fold {k} ({quote_ids(ids)})"
            if not (d / MANIFEST).is_file():
                self.add("oof", "FAIL", rel, f"{who} have no model: {self.rel(d)} is not a complete model folder",
                         rows=ids, count=len(rows))
                ok = False
                continue
            fm = read_manifest(d)
            if fm.get("fold") != k or fm.get("fold_key") != split.key:
                self.add("oof", "FAIL", rel, f"{who} were predicted by {self.rel(d)}, whose manifest says it validated "
                                             f"on fold {fm.get('fold')} of folds {fm.get('fold_key')}, not fold {k} "
                                             f"of {split.key}: that model may have trained on them",
                         rows=ids, count=len(rows))
                ok = False
            elif fm.get("metrics", {}).get("valid_rows", len(rows)) != len(rows):
                self.add("oof", "FAIL", rel, f"{who}: {self.rel(d)} validated on "
                                             f"{fm['metrics']['valid_rows']} rows", rows=ids, count=len(rows))
                ok = False
        return ok

    # ---------------------------------------------------------------- stacks
    def check_stack(self, path: Path) -> None:
        rel = self.rel(path)
        m = read_manifest(path)
        split = self.splits.get(m["fold_key"])
        ok = True
        for name, ref in m.get("inputs", {}).items():
            src = self.root / ref["path"]
            actual = read_manifest(src).get("fold_key") if (src / MANIFEST).is_file() else None
            if ref.get("fold_key") != m["fold_key"] or actual != m["fold_key"]:
                on = actual if actual != m["fold_key"] else ref.get("fold_key")
                self.add("stacks", "FAIL", rel, f"input {name} ({ref['path']}) is on folds {on}, the stack on "
                                                f"{m['fold_key']}: its OOF rows are not out-of-fold for the stack's "
                                                f"meta-models")
                ok = False
        if split is None:
            self.add("stacks", "FAIL", rel, f"built on folds {m['fold_key']}, which are not on disk")
            return
        folds = self.prediction_folds(path, split, "stacks")
        if folds is None:
            return
        ok &= self.fold_mismatch("stacks", f"{rel}/folds.npy", folds, split, split.csv)
        for name, ref in m.get("inputs", {}).items():
            src = self.root / ref["path"]
            if not (src / "folds.npy").is_file():
                self.add("stacks", "FAIL", rel, f"input {name}: {ref['path']}/folds.npy is missing")
                ok = False
                continue
            level1 = self.prediction_folds(src, split, "stacks")
            if level1 is None:
                ok = False
                continue
            bad = np.flatnonzero(level1 != folds)
            if len(bad):
                i = bad[0]
                self.add("stacks", "FAIL", f"{rel}/folds.npy", f"id {split.ids[i]!r} is in fold {folds[i]} here but "
                                                               f"in fold {level1[i]} of level 1 input {name} "
                                                               f"({ref['path']}/folds.npy; {len(bad)} row(s))",
                         rows=[split.ids[j] for j in bad], count=len(bad))
                ok = False
        if ok:
            self.add("stacks", "PASS", rel, f"{len(m.get('inputs', {}))} input(s) ({', '.join(m.get('inputs', {}))}) "
                                            f"on its folds {split.key}; its folds equal level 1's for all "
                                            f"{len(split.ids)} ids")

    # ---------------------------------------------------------------- pseudo
    def check_pseudo(self, path: Path, model_dirs: list[Path]) -> None:
        rel, ctx = self.rel(path), self.ctx
        m = read_manifest(path)
        frame = read_csv(path / "pseudo.csv", "pseudo-label set")
        ids = frame["id"].astype(str).tolist() if "id" in frame.columns else []
        test = set(ctx.test.ids)
        split = self.splits.get(m.get("fold_key"))
        train_fold = dict(zip(ctx.train.ids, [None] * len(ctx.train.ids)))
        if split is not None:
            train_fold.update(split.fold_of)
        ok = True
        in_train = [i for i in ids if i in train_fold]
        if in_train:
            i = in_train[0]
            where = (f"validation fold {train_fold[i]} of {split.csv}" if train_fold[i] is not None
                     else ctx.train.source)
            self.add("pseudo", "FAIL", f"{rel}/pseudo.csv", f"id {i!r} is a train id ({where}): its pseudo label would "
                                                            f"train the models that validate on it ({len(in_train)} "
                                                            f"such id(s): {quote_ids(in_train)})",
                     rows=in_train, count=len(in_train))
            ok = False
        not_test = [i for i in ids if i not in test and i not in train_fold]
        if not_test:
            self.add("pseudo", "FAIL", f"{rel}/pseudo.csv", f"id {not_test[0]!r} is not a test id of "
                                                            f"{ctx.test.source} ({len(not_test)} such id(s))",
                     rows=not_test, count=len(not_test))
            ok = False
        repeated = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
        if repeated:
            self.add("pseudo", "FAIL", f"{rel}/pseudo.csv", f"id {repeated[0]!r} is listed more than once "
                                                            f"({len(repeated)} such id(s))", rows=repeated,
                     count=len(repeated))
            ok = False
        source = m.get("inputs", {}).get("source", {})
        if source.get("fold_key") not in (None, m.get("fold_key")):
            self.add("pseudo", "FAIL", rel, f"its source {source.get('path')} is on folds {source['fold_key']}, the "
                                            f"set on {m.get('fold_key')}")
            ok = False
        users = [d for d in model_dirs if read_manifest(d).get("inputs", {}).get("pseudo", {}).get("key") == path.name]
        for d in users:
            if read_manifest(d).get("fold_key") != m.get("fold_key"):
                self.add("pseudo", "FAIL", self.rel(d), f"trains on {rel} (selected on folds {m.get('fold_key')}) but "
                                                        f"validates on folds {read_manifest(d).get('fold_key')}")
                ok = False
        if ok:
            self.add("pseudo", "PASS", rel, f"{len(ids)} pseudo-label rows, all test ids (none a train id, so none in "
                                            f"a validation fold); {len(users)} model fold(s) train on it, on its folds "
                                            f"{m.get('fold_key')}")
        self.pseudo_duplicates(rel, ids)

    def pseudo_duplicates(self, rel: str, ids: list) -> None:
        """A pseudo row whose image is byte-identical to a train image puts that image, labelled by the source's
        models, into the training part of the fold that validates on it."""
        if self.hashes is None:
            return
        train_h, test_h = self.hashes
        train_of = {}
        for i, h in enumerate(train_h):
            train_of.setdefault(h, i)
        test_row = {t: r for r, t in enumerate(self.ctx.test.ids)}
        pairs = [(i, self.ctx.train.ids[train_of[test_h[test_row[i]]]]) for i in ids
                 if i in test_row and test_h[test_row[i]] in train_of]
        if pairs:
            shown = ", ".join(f"test {a!r} = train {b!r}" for a, b in pairs[:3])
            self.add("pseudo", "WARN", f"{rel}/pseudo.csv", f"{len(pairs)} pseudo row(s) are byte-identical to train "
                                                            f"images ({shown}): every fold trains on them, including "
                                                            f"the fold that validates on their train twin",
                     rows=[a for a, _ in pairs], count=len(pairs))

    # ---------------------------------------------------------------- distillation
    def check_distill(self, model_dirs: list[Path]) -> None:
        by_train: dict[Path, list] = {}
        for d in model_dirs:
            teacher = read_manifest(d).get("inputs", {}).get("teacher")
            if teacher is not None:
                by_train.setdefault(d.parent, []).append((d, teacher))
        for train_dir, items in by_train.items():
            ok, checked = True, set()
            for d, teacher in items:
                m = read_manifest(d)
                split = self.splits.get(m.get("fold_key"))
                tdir = self.root / teacher["path"]
                if (tdir, m.get("fold_key")) in checked:
                    continue
                checked.add((tdir, m.get("fold_key")))
                if not (tdir / MANIFEST).is_file():
                    self.add("distill", "FAIL", self.rel(d), f"its teacher's predictions {teacher['path']} are not on "
                                                             f"disk: its soft targets cannot be traced")
                    ok = False
                    continue
                t_key = read_manifest(tdir).get("fold_key")
                if t_key != m.get("fold_key") or split is None:
                    self.add("distill", "FAIL", self.rel(d), f"teacher {teacher['path']} was predicted on folds "
                                                             f"{t_key}, the student validates on folds "
                                                             f"{m.get('fold_key')}")
                    ok = False
                    continue
                t_folds = self.prediction_folds(tdir, split, "distill")
                if t_folds is None:
                    ok = False
                    continue
                bad = np.flatnonzero(t_folds != split.folds)
                if len(bad):
                    i = bad[0]
                    self.add("distill", "FAIL", f"{teacher['path']}/folds.npy",
                             f"id {split.ids[i]!r}'s soft target for student {self.rel(train_dir)} comes from the "
                             f"teacher model of fold {t_folds[i]}, but the student validates it in fold "
                             f"{split.folds[i]} ({split.csv}; {len(bad)} row(s))",
                             rows=[split.ids[j] for j in bad], count=len(bad))
                    ok = False
            if ok:
                teachers = sorted({t["path"] for _, t in items})
                self.add("distill", "PASS", self.rel(train_dir), f"soft targets from {', '.join(teachers)}: every "
                                                                 f"train row's from the teacher model that held it "
                                                                 f"out, on the student's folds")

    # ---------------------------------------------------------------- duplicates
    def check_duplicates(self) -> None:
        from ..artifacts import artifact_path
        from ..audit.duplicates import content_hashes, duplicate_sets

        ctx = self.ctx
        cache = artifact_path(ctx.root, "cache", ctx.comp, "x").parent
        progress = ctx.cfg.runtime.progress
        train_h = content_hashes(ctx.train.paths, cache, progress, "hashing train images")
        test_h = content_hashes(ctx.test.paths, cache, progress, "hashing test images")
        self.hashes = (train_h, test_h)
        train_ids, test_ids = ctx.train.ids, ctx.test.ids
        first_train = {}
        for i, h in enumerate(train_h):
            first_train.setdefault(h, i)
        cross = [(train_ids[first_train[h]], test_ids[j]) for j, h in enumerate(test_h) if h in first_train]
        test_set = set(test_h)
        n_train_twins = sum(1 for h in train_h if h in test_set)
        if cross:
            shown = ", ".join(f"train {a!r} = test {b!r}" for a, b in cross[:3])
            self.add("duplicates", "INFO", "", f"train/test: {len(cross)} of {len(test_ids)} test images are "
                                               f"byte-identical to {n_train_twins} train images ({shown})",
                     rows=[b for _, b in cross], count=len(cross))
        else:
            self.add("duplicates", "PASS", "", f"train/test: no test image is byte-identical to a train image "
                                               f"({len(train_ids)} train, {len(test_ids)} test files hashed)")
        sets = duplicate_sets(train_h)
        test_sets = duplicate_sets(test_h)
        y = ctx.targets
        conflicts = [s for s in sets if any(not np.array_equal(y[s[0]], y[j]) for j in s[1:])]
        msg = (f"within train: {sum(map(len, sets))} images in {len(sets)} sets of byte-identical files"
               + (f", {len(conflicts)} set(s) with different labels (e.g. "
                  f"{quote_ids(train_ids[j] for j in conflicts[0])})" if conflicts else "")
               + (f"; within test: {sum(map(len, test_sets))} images in {len(test_sets)} sets" if test_sets else ""))
        self.add("duplicates", "INFO" if sets or test_sets else "PASS", "", msg,
                 rows=[train_ids[s[0]] for s in sets], count=len(sets))
        fingerprint = ctx.train.fingerprint()
        for split in self.splits.values():
            self.split_duplicates(split, sets, fingerprint)

    def split_duplicates(self, split: Split, sets: list, fingerprint: str) -> None:
        if split.ids != self.ctx.train.ids or split.manifest.get("inputs", {}).get("train", {}).get(
                "fingerprint") != fingerprint:
            self.add("duplicates", "SKIP", split.csv, "built from other train data than the current "
                                                      f"{self.ctx.train.source}: not checked")
            return
        crossing = [s for s in sets if len({split.folds[i] for i in s}) > 1]
        cfg = split.manifest.get("config", {})
        dedupe = bool(cfg.get("folds", {}).get("dedupe", False))
        if not crossing:
            self.add("duplicates", "PASS", split.csv, f"no set of byte-identical train images crosses folds "
                                                      f"({len(sets)} set(s){', folds.dedupe' if dedupe else ''})")
            return
        pairs = [(split.ids[s[0]], split.ids[j]) for s in crossing for j in s[1:]
                 if split.folds[j] != split.folds[s[0]]]
        shown = ", ".join(f"{a!r} (fold {split.fold_of[a]}) = {b!r} (fold {split.fold_of[b]})" for a, b in pairs[:3])
        status = "FAIL" if dedupe else "WARN"
        hint = ("although folds.dedupe is on" if dedupe else
                "a model validates on images it trained on: set folds.dedupe=true")
        self.add("duplicates", status, split.csv, f"{len(crossing)} set(s) of byte-identical train images cross folds, "
                                                  f"{len(pairs)} pair(s) ({shown}); {hint}",
                 rows=[b for _, b in pairs], count=len(pairs))

    # ---------------------------------------------------------------- class counts
    def check_classes(self, split: Split) -> None:
        from .folds import coverage_problems, metric_requirements

        ctx, comp = self.ctx, self.ctx.cfg.competition
        if split.ids != ctx.train.ids:
            self.add("classes", "SKIP", split.csv, f"its ids are not the current {ctx.train.source}'s: no targets")
            return
        y = ctx.targets
        classes = list(comp.classes)
        if comp.task == "binary":
            onehot = np.hstack([1 - y, y])
        elif comp.task == "multiclass":
            onehot = np.eye(y.shape[1], dtype=np.float32)[y.argmax(1)]
        else:
            onehot = y
        counts = np.stack([onehot[split.folds == k].sum(0) for k in range(split.n_splits)], 1).astype(np.int64)
        table = pd.DataFrame(counts, index=pd.Index(classes, name="tag" if comp.task == "multilabel" else "class"),
                             columns=[f"fold {k}" for k in range(split.n_splits)])
        table["all"] = counts.sum(1)
        title = "positive rows per tag" if comp.task == "multilabel" else "rows per class"
        self.report.tables.append((f"{title} in each validation fold: {split.csv}", table))
        metric = split.manifest.get("config", {}).get("competition", {}).get("metric", comp.metric)
        needed = coverage_problems(split.folds, split.n_splits, metric_requirements(y, comp.task, metric, classes))
        for k, r in needed:
            self.add("classes", "FAIL", split.csv, f"{r.gap(k)}; {r.why} it in every validation fold "
                                                   f"(its validation metric is NaN or meaningless)")
        kind = "tag" if comp.task == "multilabel" else "class"
        reported = {(k, r.what) for k, r in needed if not r.negative}  # already a FAIL
        absent = [(k, c) for j, c in enumerate(classes) for k in range(split.n_splits)
                  if counts[j, k] == 0 and counts[j].sum() > 0 and (k, f"{kind} {c!r}") not in reported]
        if absent:
            shown = ", ".join(f"{c!r} in fold {k}" for k, c in absent[:5])
            self.add("classes", "WARN", split.csv, f"{len(absent)} class/fold gap(s): {shown} "
                                                   f"(not needed by the metric {metric})")
        if not needed and not absent:
            self.add("classes", "PASS", split.csv, f"every {kind} with train rows is in every validation fold "
                                                   f"(see the table)")

    # ---------------------------------------------------------------- all
    def guarded(self, check: str, path: Path, fn, *args) -> None:
        try:
            fn(path, *args)
        except MALFORMED as e:
            detail = str(e).splitlines()[0] if str(e) else ""
            self.add(check, "FAIL", self.rel(path), f"unreadable artifact: {e.__class__.__name__} {detail}".strip())

    def run(self) -> Report:
        folds = self.complete("folds", 1)
        models = self.complete("train", 3)
        oofs = self.complete("predict", 2)
        stacks = self.complete("stack", 1)
        pseudo = [p for p in self.complete("pseudo", 2) if p.parent.name.startswith("round")]
        exps = sorted({p.parent.parent.name for p in models} | {p.parent.name for p in oofs})
        built = any((folds, models, oofs, stacks, pseudo))
        r = self.report
        if not built:
            r.notes.append(f"nothing built yet for {self.comp}: no folds/, models/, oof/, stacks/ or pseudo/ artifacts "
                           f"under {self.root} (run `make folds COMP={self.comp}` first); input checks only")
        else:
            r.notes.append(f"audit of {self.comp}: {len(folds)} fold split(s), {len(models)} model fold(s) of "
                           f"{len(exps)} experiment(s) ({', '.join(exps) or '-'}), {len(oofs)} OOF prediction set(s), "
                           f"{len(stacks)} stack(s), {len(pseudo)} pseudo-label set(s)")
        for p in folds:
            self.guarded("folds", p, self.check_folds)
        if models:
            try:
                self.check_models(models)
            except MALFORMED as e:
                self.add("models", "FAIL", self.rel(models[0].parent.parent), f"unreadable: {e}")
        for p in oofs:
            self.guarded("oof", p, self.check_oof)
        for p in stacks:
            self.guarded("stacks", p, self.check_stack)
        try:
            self.check_distill(models)
        except MALFORMED as e:
            self.add("distill", "FAIL", "", f"unreadable model manifest: {e}")
        self.check_duplicates()
        for p in pseudo:
            self.guarded("pseudo", p, self.check_pseudo, models)
        for split in self.splits.values():
            self.check_classes(split)
        return r


def run(ctx):
    report = Audit(ctx).run()
    print("\n".join(report.lines()), flush=True)
    out = Path(ctx.root) / "audit" / ctx.comp / "audit.json"
    atomic_write_json(out, report.to_json())
    log.info(f"audit report -> {out}")
    failures = report.failures()
    if failures:
        checks = sorted({f.check for f in failures})
        raise PipelineError(f"audit of {ctx.comp}: {len(failures)} check(s) failed ({', '.join(checks)}): "
                            f"first: {failures[0].artifact or 'input'}: {failures[0].message}")
    return out
