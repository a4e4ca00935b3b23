"""What every audit check shares: the splits read so far, the report it adds findings to, and the helpers that
compare one artifact's per-row folds with a split's."""
from pathlib import Path

import numpy as np

from ..artifacts import MANIFEST, STAGE_DIRS, read_manifest
from ..errors import PipelineError
from ..utils.io import load_npy, stable_hash
from .report import Report, quote_ids

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


class Auditor:
    """The state of one `make audit`: the competition's context, the report, the splits read by the folds
    check (by key) and the image hashes read by the duplicates check."""

    def __init__(self, ctx):
        self.ctx, self.root, self.comp = ctx, Path(ctx.root), ctx.comp
        self.report = Report(ctx.comp)
        self.splits: dict[str, Split] = {}
        self.hashes = None  # (train hashes, test hashes) once computed

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

    def guarded(self, check: str, path: Path, fn, *args) -> None:
        """fn(self, path, *args); an artifact it cannot read is a FAIL naming it, not a traceback."""
        try:
            fn(self, path, *args)
        except MALFORMED as e:
            detail = str(e).splitlines()[0] if str(e) else ""
            self.add(check, "FAIL", self.rel(path), f"unreadable artifact: {e.__class__.__name__} {detail}".strip())

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

    def rows_differ(self, check: str, where: str, split: Split, found: np.ndarray, expected: np.ndarray,
                    message) -> bool:
        """A FAIL naming the split's rows whose fold in `found` is not the one in `expected`, worded by
        message(first such row, all of them); True when every row agrees."""
        bad = np.flatnonzero(found != expected)
        if not len(bad):
            return True
        self.add(check, "FAIL", where, message(bad[0], bad), rows=[split.ids[j] for j in bad], count=len(bad))
        return False

    def same_folds(self, check: str, folder: Path, split: Split, expected: np.ndarray, where: str, message) -> bool:
        """A prediction folder's per-row folds (`prediction_folds`) equal `expected`; else a FAIL, worded by
        message(its folds, first differing row, all of them)."""
        found = self.prediction_folds(folder, split, check)
        return found is not None and self.rows_differ(check, where, split, found, expected,
                                                      lambda i, bad: message(found, i, bad))

    def fold_mismatch(self, check: str, where: str, folds: np.ndarray, split: Split, against: str) -> bool:
        """FAIL naming the rows whose fold in `where` differs from `against` (split.folds); True if all agree."""
        return self.rows_differ(check, where, split, folds, split.folds, lambda i, bad: (
            f"id {split.ids[i]!r} is in fold {folds[i]} here but in fold {split.folds[i]} of {against} "
            f"({len(bad)} row(s) differ: {quote_ids(split.ids[j] for j in bad)})"))
