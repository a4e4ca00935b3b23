"""Tables that hold their rows' pixels: a CSV with one column per pixel (digit-recognizer: `label,pixel0..pixel783`)
or a JSON list of records with one list per channel (statoil: `band_1`, `band_2`, 75 x 75 floats each). They are
read in two parts: the other columns as strings, as every table is read (utils.io.read_csv), and the pixel columns
as one (N, H, W, C) array, parsed by pandas' C parser rather than as 33 million Python strings."""
import fnmatch
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import PipelineError
from ..utils.io import read_csv

TABLE_SUFFIXES = (".csv", ".json")


def matching_columns(columns, patterns) -> list[str]:
    """The columns matching any of the fnmatch `patterns` (`pixel*`, `band_1`), in the table's order."""
    return [c for c in columns if any(fnmatch.fnmatchcase(str(c), p) for p in patterns)]


def _json_records(path: Path, what: str) -> pd.DataFrame:
    """The records of a JSON table (parsed once a process: the train stage reads the table for its rows and its
    pixels, train and test); a copy, so that callers may change it."""
    try:
        stat = Path(path).stat()
    except FileNotFoundError:
        raise PipelineError(f"missing {what}: {path}") from None
    return _parsed_records(str(path), stat.st_mtime_ns, stat.st_size).copy()


@lru_cache(maxsize=2)
def _parsed_records(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    try:
        records = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PipelineError(f"missing table: {path}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise PipelineError(f"cannot parse {path}: {e}") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise PipelineError(f"{path}: expected a JSON list of records (one object per image)")
    return pd.DataFrame.from_records(records)


def read_table(path: Path, what: str = "file", pixel_columns=()) -> tuple[pd.DataFrame, list]:
    """(the table without its pixel columns, every column a string as read_csv gives it; the pixel column names).
    A .json table is a list of records; its list-valued columns stay out of the string frame."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        frame = _json_records(path, what)
        pixels = matching_columns(frame.columns, pixel_columns)
        rest = frame.drop(columns=pixels)
        return rest.apply(lambda c: c.map(lambda v: "" if v is None else str(v))), pixels
    if not pixel_columns:
        return read_csv(path, what), []
    header = read_csv_header(path, what)
    pixels = matching_columns(header, pixel_columns)
    rest = [c for c in header if c not in pixels]
    try:  # a table of pixels alone (digit-recognizer's test.csv): its rows, with no column
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=rest or pixels[:1])
        return (frame if rest else frame.drop(columns=pixels[:1])), pixels
    except (pd.errors.ParserError, ValueError) as e:
        raise PipelineError(f"cannot parse {path}: {str(e).splitlines()[0]}") from None


def read_csv_header(path: Path, what: str) -> list[str]:
    """The column names of a CSV from its first line (pandas' parser takes 0.15 s for 785 columns; this, none)."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), [])
    except FileNotFoundError:
        raise PipelineError(f"missing {what}: {path}") from None


def pixel_array(path: Path, patterns, shape, index) -> np.ndarray:
    """(N, H, W, C) pixels of the table's rows `index` (its frame index) in the columns matching `patterns`: uint8
    when every value is an integer in 0..255, else float32. CSV: H*W*C scalar columns, row-major, channels last;
    JSON: C list columns of H*W values."""
    path = Path(path)
    if len(shape) != 2:
        raise PipelineError(f"competition.pixel_shape: [height, width] of the images in {path}, got {shape}")
    height, width = shape
    records = _json_records(path, "table") if path.suffix.lower() == ".json" else None
    columns = matching_columns(read_csv_header(path, "table") if records is None else records.columns, patterns)
    if not columns:
        raise PipelineError(f"{path}: no column matches competition.pixel_columns {list(patterns)}")
    if records is not None:
        frame = records.loc[index]
        planes = []
        for col in columns:
            lengths = frame[col].map(lambda v: len(v) if isinstance(v, list) else -1)
            bad = lengths.index[lengths != height * width]
            if len(bad):
                raise PipelineError(f"{path} record {bad[0] + 1}: {col} holds {max(lengths[bad[0]], 0)} values, "
                                    f"not {height}x{width} (competition.pixel_shape)")
            planes.append(np.asarray(frame[col].tolist(), dtype=np.float32))
        values = np.stack(planes, axis=-1)
    else:
        try:
            values = pd.read_csv(path, usecols=columns, dtype=np.float32).loc[index, columns].to_numpy()
        except ValueError as e:  # a cell that is not a number
            raise PipelineError(f"{path}: pixel columns must hold numbers ({str(e).splitlines()[0]})") from None
        if values.shape[1] % (height * width):
            raise PipelineError(f"{path}: {values.shape[1]} pixel columns do not make {height}x{width} images "
                                f"(competition.pixel_shape)")
    if np.isnan(values).any():
        row = int(np.isnan(values.reshape(len(values), -1)).any(axis=1).argmax())
        raise PipelineError(f"{path} row {index[row] + 2}: a pixel value is missing")
    values = values.reshape(len(values), height, width, -1)
    if np.array_equal(values, np.round(values)) and values.min(initial=0) >= 0 and values.max(initial=0) <= 255:
        return values.astype(np.uint8)
    return values
