"""Discovery of inputs other than one RGB image file per id (data/sources.py): pixels in the tables themselves
(digit-recognizer's `pixel0..pixel783` columns, statoil's JSON band lists), one file per channel (Human Protein
Atlas: `<id>_red.png` ...), `.npy` arrays (SETI, in folders named by the id's first character) and DICOM files.
Each finding is logged with why; the channel count and the normalisation measured on train go into the config's
`model` and `data` sections (`input_sections`)."""
import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import PipelineError
from .data.pixel_tables import read_csv_header

log = logging.getLogger("foldstack")

ARRAY_EXTS = {".npy": "npy", ".dcm": "dicom", ".dicom": "dicom"}
CHANNEL_ORDER = ("red", "green", "blue", "yellow")  # HPA's files; other suffixes keep their sorted order
MIN_PIXEL_COLUMNS = 64  # fewer numbered columns are tabular features, not an image
STATS_SAMPLE = 256      # train images read to measure the normalisation


def _square_side(n: int) -> int | None:
    side = math.isqrt(n)
    return side if side * side == n else None


def pixel_columns(columns) -> tuple[list[str], list[int]] | None:
    """([pattern], [H, W]) when a table's columns include >= MIN_PIXEL_COLUMNS numbered columns of one prefix
    (`pixel0`..`pixel783`) making a square image of 1 or 3 channels; else None."""
    numbered = [re.fullmatch(r"([A-Za-z_]*)(\d+)", str(c)) for c in columns]
    prefixes = pd.Series([m.group(1) for m in numbered if m])
    if prefixes.empty or (prefixes.value_counts() == prefixes.value_counts().iloc[0]).sum() > 1:
        return None  # several runs as long are features, not an image (leaf's margin1..64, shape1..64, texture1..64)
    prefix, count = prefixes.value_counts().index[0], int(prefixes.value_counts().iloc[0])
    for channels in (1, 3):
        side = _square_side(count // channels) if count % channels == 0 else None
        if count >= MIN_PIXEL_COLUMNS and side:
            return [f"{prefix}[0-9]*"], [side, side]
    return None


def json_bands(path: Path) -> tuple[list[str], list[int]] | None:
    """([band columns], [H, W]) of a JSON list of records holding equal-length lists of a square number of values
    (statoil's band_1, band_2 of 75 x 75); else None."""
    try:
        records = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        return None
    lists = {k: len(v) for k, v in records[0].items() if isinstance(v, list)}
    sides = {k: _square_side(n) for k, n in lists.items()}
    bands = sorted(k for k, side in sides.items() if side and lists[k] >= MIN_PIXEL_COLUMNS)
    if not bands or len({lists[b] for b in bands}) > 1:
        return None
    return bands, [sides[bands[0]]] * 2


def pixel_table(input_dir: Path, stem: str) -> dict | None:
    """The image_source=table keys when `<stem>.csv` or `<stem>.json` holds pixels (test.csv of the digit
    recognizer, test.json of statoil); else None."""
    for name in (f"{stem}.csv", f"{stem}.json"):
        path = input_dir / name
        if not path.is_file():
            continue
        found = json_bands(path) if path.suffix == ".json" else pixel_columns(read_csv_header(path, "table"))
        if found:
            columns, shape = found
            log.info(f"competition.image_source: table: {path} holds the pixels ({', '.join(columns)} as "
                     f"{shape[0]}x{shape[1]} images)")
            return dict(image_source="table", pixel_columns=columns, pixel_shape=shape)
    return None


def _channel_suffixes(folder: Path, ids) -> list[str] | None:
    """The suffixes after each probed id that every probed id has (`_red.png`, ...), when there are several."""
    common = None
    for i in ids:
        names = {p.name[len(str(i)):] for p in folder.glob(f"{glob_escape(str(i))}_*") if p.is_file()}
        common = names if common is None else common & names
    if not common or len(common) < 2:
        return None
    rank = {c: n for n, c in enumerate(CHANNEL_ORDER)}
    return sorted(common, key=lambda s: (rank.get(s.lstrip("_").split(".")[0].lower(), len(rank)), s))


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def file_rule(folder: Path, ids) -> dict | None:
    """How `folder` holds one array/DICOM/channel set per id: the source, its suffix, and a path template when
    the files sit in sub-folders named by the id's first character (SETI: `train/a/a1b2.npy`); else None."""
    probe = [str(i) for i in list(ids)[:5]]
    if not probe or not folder.is_dir():
        return None
    for nested in ("", "{id[0]}/"):
        where = [(folder / i[0]) if nested else folder for i in probe]
        for ext, kind in ARRAY_EXTS.items():
            if all((w / f"{i}{ext}").is_file() for w, i in zip(where, probe)):
                return dict(image_source=kind, ext=ext, nested=bool(nested))
        if not nested:
            suffixes = _channel_suffixes(folder, probe)
            if suffixes:
                return dict(image_source="channel_files", channel_suffixes=suffixes, ext="", nested=False)
    return None


def measure_normalisation(samples, n: int = STATS_SAMPLE) -> tuple[list[float], list[float]]:
    """Per-channel mean and std over up to n train images spread over the table (uint8 as fractions of 255,
    floats in their own units): the `data.mean`/`data.std` of inputs that are not RGB photographs."""
    rows = np.unique(np.linspace(0, len(samples) - 1, min(n, len(samples))).astype(int))
    total, total_sq, count = 0.0, 0.0, 0
    for r in rows:
        pixels = samples.read(int(r)).astype(np.float64)
        if not samples.float_pixels:
            pixels = pixels / 255
        flat = pixels.reshape(-1, pixels.shape[2])
        total, total_sq, count = total + flat.sum(0), total_sq + (flat ** 2).sum(0), count + len(flat)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0))
    if not np.all(np.isfinite(mean)):
        raise PipelineError(f"{samples.paths[0]}: pixel values that are not finite (NaN or inf) in the train images")
    return [float(f"{m:.4g}") for m in mean], [float(f"{max(s, 1e-6):.4g}") for s in std]


def input_sections(comp: dict, input_dir: Path) -> dict:
    """The `model` and `data` sections a non-RGB source (or 16-bit image files) needs: in_chans and the mean/std
    measured on train."""
    from .config.competition import Competition
    from .data.table import load_train

    source = comp.get("image_source", "file")
    train = load_train(Competition(**comp, input_dir=str(Path(input_dir).resolve())), Path("/"), "discovery")
    if source == "file" and not train.samples.float_pixels:  # 8-bit RGB files: ImageNet's in_chans and mean/std
        return {}
    mean, std = measure_normalisation(train.samples)
    what = "16-bit image file" if source == "file" else source
    log.info(f"{what} inputs of {len(mean)} channel(s): model.in_chans={len(mean)}, data.mean "
             f"{mean} and data.std {std}, measured on {min(STATS_SAMPLE, len(train))} train images")
    return {"model": {"in_chans": len(mean)}, "data": {"mean": mean, "std": std}}


def _layout_keys(rule: dict, id_col: str, side: str) -> dict:
    keys = {"image_source": rule["image_source"], f"{side}_image_ext": rule["ext"]}
    if "channel_suffixes" in rule:
        keys["channel_suffixes"] = rule["channel_suffixes"]
    if rule["nested"]:
        keys[f"{side}_path"] = f"{{{id_col}[0]}}/{{{id_col}}}"
    return keys


def test_layout(input_dir: Path, sub: pd.DataFrame, id_col: str, test_dirs, image_folder) -> dict:
    """The competition keys of the test rows: pixels in test.csv / test.json; else image files named by the ids
    (`image_folder`: preferred, e.g. SIIM's jpeg/test beside its DICOM test/); else arrays, DICOM or channel
    files in a test folder; else image_folder's refusal."""
    table = pixel_table(input_dir, "test")
    if table is not None:
        name = next(n for n in ("test.csv", "test.json") if (input_dir / n).is_file())
        return dict(table, test_csv=name)
    try:
        return dict(zip(("test_dir", "test_image_ext"), image_folder(input_dir, test_dirs, sub[id_col].tolist(),
                                                                     "test")))
    except PipelineError as no_images:
        refusal = no_images
    for name in [n for n in test_dirs if (input_dir / n).is_dir()]:
        rule = file_rule(input_dir / name, sub[id_col].tolist())
        if rule is not None:
            keys = _layout_keys(rule, id_col, "test")
            log.info(f"competition.image_source: {rule['image_source']}: {input_dir / name} holds "
                     + (f"{', '.join(rule['channel_suffixes'])} per id" if "channel_suffixes" in rule
                        else f"<id>{rule['ext']}") + (", in folders named by the id's first character"
                                                      if rule["nested"] else ""))
            return dict(test_dir=name, **keys)
    raise refusal


def train_tables(input_dir: Path, comp: dict) -> list[Path]:
    """The train table of pixels in a table (train.csv, or statoil's train.json); [] for other sources."""
    if comp.get("image_source") != "table":
        return []
    return [p for p in (input_dir / "train.csv", input_dir / "train.json") if p.is_file()][:1]


def read_train(path: Path, comp: dict) -> pd.DataFrame:
    """The train table's rows as strings (without its pixel columns when they are the images)."""
    from .config.competition import Competition
    from .data.table import table_rows

    known = {k: v for k, v in comp.items() if k in Competition.model_fields}
    return table_rows(Competition(**known), path, "train csv")


def train_files(input_dir: Path, train: pd.DataFrame, id_col: str, comp: dict, train_dirs) -> dict | None:
    """train_dir and the path keys of the train rows when the test rows are not image files ({} for pixels in the
    table); None for image files (discovered as usual)."""
    kind = comp.get("image_source", "file")
    if kind == "file":
        return None
    if kind == "table":
        return {}
    for name in [n for n in train_dirs if (input_dir / n).is_dir()]:
        rule = file_rule(input_dir / name, train[id_col].tolist())
        if rule is not None and rule["image_source"] == kind:
            return dict(train_dir=name, **_layout_keys(rule, id_col, "train"))
    raise PipelineError(f"{input_dir}: the test images are {kind} files, but no train folder ({', '.join(train_dirs)})"
                        f" holds them for the train ids ({train[id_col].iloc[0]!r}, ...)")
