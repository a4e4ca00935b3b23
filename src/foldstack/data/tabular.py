"""Tabular columns of the train/test tables (competition.tabular_cols): their types inferred by discovery, and one
encoder (TabularEncoder) that turns them into a float matrix for the level-2 meta-models. The encoder is fitted on
the train rows only; what it learns (medians, spreads, levels) uses no label, so fitting it on every train row
leaks no validation label into a fold."""
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..config.competition import Competition
from ..errors import PipelineError
from .pixel_tables import read_table

log = logging.getLogger("foldstack")

MISSING = frozenset({"", "na", "nan", "null", "none", "n/a"})  # lowercased cells read as a missing value
MISSING_LEVEL = "<missing>"  # a categorical column's level for a missing value
MAX_LEVELS = 30  # a column of more distinct strings is an id or free text, not a category
TEST_TABLES = ("test.csv", "test.json")


def _missing(values: pd.Series) -> pd.Series:
    return values.astype(str).str.strip().str.lower().isin(MISSING)


def _canonical(values: pd.Series) -> pd.Series:
    """Values as level names: stripped, a number as its float (`1` and `1.0` from a JSON table are one level)."""
    text = values.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    return text.where(numbers.isna(), numbers.astype(str))


def infer_type(values: pd.Series) -> str | None:
    """`binary` (two values, none missing), `numeric` (numbers, some maybe missing), `categorical` (at most
    MAX_LEVELS strings, missing counted as one), or None (constant, or too many strings to be a category)."""
    absent = _missing(values)
    present = _canonical(values[~absent])
    n_values = present.nunique()
    if n_values < 2:
        return None
    if n_values == 2 and not absent.any():
        return "binary"
    if pd.to_numeric(present, errors="coerce").notna().all():
        return "numeric"
    return "categorical" if n_values + bool(absent.any()) <= MAX_LEVELS else None


def infer_tabular(train: pd.DataFrame, test: pd.DataFrame, exclude, test_source: str) -> dict[str, str]:
    """{column: type} of the train columns also in the test rows' table, other than `exclude` (id, targets, group),
    in the train table's order; columns with no usable type are left out and logged."""
    found, skipped = {}, []
    for col in [c for c in train.columns if c in test.columns and c not in set(exclude)]:
        kind = infer_type(train[col])
        if kind is None:
            skipped.append(col)
        else:
            found[col] = kind
    if found:
        log.info(f"competition.tabular_cols: {', '.join(f'{c} ({t})' for c, t in found.items())}: in the train "
                 f"table and {test_source}; meta features of the level-2 meta-models (stack.method xgboost, "
                 f"logreg, ridge)")
    if skipped:
        log.info(f"not tabular columns (constant, or more than {MAX_LEVELS} distinct strings): {', '.join(skipped)}")
    return found


def discover_tabular(input_dir: Path, train: pd.DataFrame, comp: dict) -> dict:
    """The competition keys for the tabular columns: tabular_cols (and test_csv, the test rows' table, when it is
    not already named); {} when no table of the test rows has any."""
    name = comp.get("test_csv") or next((n for n in TEST_TABLES if (input_dir / n).is_file()), None)
    if name is None:
        return {}
    test, _ = read_table(input_dir / name, "test table", comp.get("pixel_columns", ()))
    exclude = [comp["id_col"], *comp.get("target_cols", []), comp.get("group_col")]
    found = infer_tabular(train, test, exclude, name)
    return dict(test_csv=name, tabular_cols=found) if found else {}


@dataclass
class ColumnCode:
    """How one column is encoded: numeric: (x - center) / scale, missing -> center, plus a 0/1 missing flag when
    the train rows had missing values; binary: 1 for levels[1], 0 for levels[0], 0.5 for anything else;
    categorical: one-hot over levels (a value not seen in train: all zeros)."""
    name: str
    kind: str
    center: float = 0.0
    scale: float = 1.0
    flag: bool = False
    levels: list = field(default_factory=list)

    def feature_names(self) -> list[str]:
        if self.kind == "numeric":
            return [self.name] + ([f"{self.name}:missing"] if self.flag else [])
        if self.kind == "binary":
            return [f"{self.name}={self.levels[1]}"]
        return [f"{self.name}={level}" for level in self.levels]


def _numbers(values: pd.Series, col: str, source: str) -> pd.Series:
    """The column as floats (NaN where missing); a cell that is neither a number nor missing is refused."""
    absent = _missing(values)
    numbers = pd.to_numeric(values.astype(str).str.strip().where(~absent), errors="coerce")
    bad = numbers.index[numbers.isna() & ~absent]
    if len(bad):
        raise PipelineError(f"{source} row {bad[0] + 2}: {col}={values[bad[0]]!r} is not a number "
                            f"(competition.tabular_cols says {col} is numeric)")
    return numbers


def _levels(values: pd.Series) -> pd.Series:
    return _canonical(values).where(~_missing(values), MISSING_LEVEL)


class TabularEncoder:
    """competition.tabular_cols as one float32 matrix, fitted on the train rows (TabularEncoder.fit)."""

    def __init__(self, codes: list[ColumnCode]):
        self.codes = codes

    @classmethod
    def fit(cls, frame: pd.DataFrame, types: dict, source: str) -> "TabularEncoder":
        _require(frame, types, source)
        codes = []
        for col, kind in types.items():
            if kind == "numeric":
                x = _numbers(frame[col], col, source)
                center = float(x.median()) if x.notna().any() else 0.0
                spread = float(x.fillna(center).std(ddof=0))
                codes.append(ColumnCode(col, kind, center, spread if spread > 0 else 1.0, bool(x.isna().any())))
                continue
            levels = sorted(_levels(frame[col]).unique())
            if kind == "binary" and len(levels) != 2:
                raise PipelineError(f"{source}: column {col} has {len(levels)} values {levels[:5]}, competition."
                                    f"tabular_cols says binary (two): make it categorical")
            codes.append(ColumnCode(col, kind, levels=levels))
        return cls(codes)

    @property
    def feature_names(self) -> list[str]:
        return [n for code in self.codes for n in code.feature_names()]

    def transform(self, frame: pd.DataFrame, source: str) -> np.ndarray:
        """(len(frame), len(feature_names)) float32 of the fitted columns of `frame` (strings, as tables are read)."""
        _require(frame, {c.name: c.kind for c in self.codes}, source)
        parts = []
        for code in self.codes:
            if code.kind == "numeric":
                x = _numbers(frame[code.name], code.name, source)
                parts.append(((x.fillna(code.center) - code.center) / code.scale).to_numpy()[:, None])
                if code.flag:
                    parts.append(x.isna().to_numpy(np.float64)[:, None])
                continue
            levels = _levels(frame[code.name]).to_numpy()
            onehot = (levels[:, None] == np.asarray(code.levels, dtype=object)[None, :]).astype(np.float64)
            if code.kind == "binary":  # anything but the two train values sits halfway
                onehot = np.where(onehot.any(1), onehot[:, 1], 0.5)[:, None]
            parts.append(onehot)
        return np.hstack(parts).astype(np.float32) if parts else np.zeros((len(frame), 0), np.float32)


def _require(frame: pd.DataFrame, types: dict, source: str) -> None:
    missing = [c for c in types if c not in frame.columns]
    if missing:
        raise PipelineError(f"{source}: no column {missing[0]!r} of competition.tabular_cols (name the test rows' "
                            f"table in competition.test_csv, or remove the column from tabular_cols)")


def frame_of_test_rows(comp: Competition, base: Path, test) -> tuple[pd.DataFrame, str]:
    """The test rows' table in the sample submission's order (competition.test_csv, else the sample submission
    itself: `test` is the loaded test Table) and its name for error messages."""
    from .table import rows_of_test_table

    if not comp.test_csv:
        return test.frame, test.source
    path, frame, order = rows_of_test_table(comp, base, test.frame)
    return frame.iloc[order], str(path)


def tabular_matrices(comp: Competition, base: Path, train, test) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(train (N, F), test (M, F) float32, the F feature names) of competition.tabular_cols, `base` the input
    folder, `train` / `test` the loaded Tables."""
    encoder = TabularEncoder.fit(train.frame, comp.tabular_cols, train.source)
    test_frame, test_source = frame_of_test_rows(comp, base, test)
    return encoder.transform(train.frame, train.source), encoder.transform(test_frame, test_source), \
        encoder.feature_names
