"""Where a row's pixels come from (competition.image_source), behind one interface: `Samples.read(i)` gives row i
as an H x W x C array, uint8 for 8-bit sources and float32 for the others, whatever the files are.

- `file`: an image file per row (everything OpenCV or PIL reads; RGB, 3 channels; 16-bit files, decided by the
  first one, kept at 16 bits as float32 with their own channels: DeepFiles);
- `npy`: a NumPy array per row (H x W, H x W x C, or C x H x W when C is the short side: SETI's 6 x 273 x 256),
  uint8 kept, any other dtype as float32;
- `dicom`: a DICOM file per row (pydicom): rescale slope/intercept applied, MONOCHROME1 inverted, clipped to the
  window its tags give; float32, 1 channel (3 for colour DICOM);
- `channel_files`: one grayscale file per channel, `<id><suffix>` for each of competition.channel_suffixes (Human
  Protein Atlas: `_red.png _green.png _blue.png _yellow.png`);
- `table`: pixels stored in the train/test table itself (digit-recognizer's `pixel0..pixel783` columns, statoil's
  JSON lists `band_1`, `band_2`), reshaped to competition.pixel_shape.
Every source goes through the decoded-image cache, so from the second epoch on they all read alike."""
import hashlib
from pathlib import Path

import numpy as np

from ..errors import PipelineError
from .deep_files import is_deep, read_deep, read_dicom


class Samples:
    """The rows' pixels. `paths`: the file backing each row (its first channel's file; the table, for pixels in a
    table), for messages, sizes and hashes. `float_pixels`: read() gives float32 (normalised in raw units)."""
    kind = "file"
    float_pixels = False

    def __init__(self, paths):
        self.paths = [Path(p) for p in paths]

    def __len__(self):
        return len(self.paths)

    def read(self, i: int) -> np.ndarray:
        from .images import read_image

        return read_image(self.paths[i])

    def files(self, i: int) -> list[Path]:
        """Every file row i reads."""
        return [self.paths[i]]

    def digest(self, i: int) -> str:
        """SHA-1 of what row i reads (duplicate checks)."""
        h = hashlib.sha1()
        for path in self.files(i):
            h.update(path.read_bytes())
        return h.hexdigest()

    def __add__(self, other: "Samples") -> "Samples":
        return Concat(self, other)

    @property
    def cache_dtype(self):
        """What the decoded-image cache stores: uint8, float16 for float16 arrays (lossless), else float32 (DICOM
        and table values in their units: float16 would overflow above 65,504)."""
        return np.float32 if self.float_pixels else np.uint8


class DeepFiles(Samples):
    """Image files of 16 bits a channel (TIFF, PNG), kept at 16 bits: float32 in their own units (0..65,535; float16
    would overflow), 1 channel for grayscale, RGB for colour (alpha dropped). An 8-bit `file` source would scale
    them to 0..255 and merge values 256 apart. Which files are deep is decided by the first one (file_samples)."""
    float_pixels = True

    def read(self, i):
        return read_deep(self.paths[i])


class NpyFiles(Samples):
    kind = "npy"

    def __init__(self, paths, float_pixels: bool = True, dtype=np.float32):
        super().__init__(paths)
        self.float_pixels, self.dtype = float_pixels, np.dtype(dtype)

    @property
    def cache_dtype(self):
        return np.float16 if self.dtype == np.float16 else super().cache_dtype

    def read(self, i):
        path = self.paths[i]
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise PipelineError(f"cannot read array: {path} ({' '.join(str(e).split())})") from None
        if array.ndim == 2:
            array = array[:, :, None]
        elif array.ndim == 3 and array.shape[0] < min(array.shape[1:]):  # channels first
            array = np.moveaxis(array, 0, -1)
        elif array.ndim != 3:
            raise PipelineError(f"{path}: an array of shape {array.shape}; expected H x W, H x W x C or C x H x W")
        if not self.float_pixels:
            if array.dtype != np.uint8:
                raise PipelineError(f"{path}: dtype {array.dtype}, where the first train arrays are uint8")
            return np.ascontiguousarray(array)
        return np.ascontiguousarray(array, dtype=np.float32)


class DicomFiles(Samples):
    kind, float_pixels = "dicom", True

    def read(self, i):
        return read_dicom(self.paths[i])


class ChannelFiles(Samples):
    """`stems[i] + suffix` for each suffix, stacked as channels. `paths`: the first channel's files."""
    kind = "channel_files"

    def __init__(self, stems, suffixes):
        self.stems, self.suffixes = [str(s) for s in stems], list(suffixes)
        super().__init__([f"{s}{self.suffixes[0]}" for s in self.stems])

    def files(self, i):
        return [Path(f"{self.stems[i]}{s}") for s in self.suffixes]

    def read(self, i):
        import cv2

        planes = []
        for path in self.files(i):
            plane = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if plane is None:
                raise PipelineError(f"cannot read channel file: {path}"
                                    + ("" if path.is_file() else " (missing)"))
            planes.append(plane)
        if len({p.shape for p in planes}) > 1:
            raise PipelineError(f"{self.files(i)[0]}: its channel files differ in size "
                                f"({', '.join('x'.join(map(str, p.shape)) for p in planes)})")
        return np.stack(planes, axis=-1)


class TablePixels(Samples):
    """Rows of an (N, H, W, C) array read from a table; `paths`: the table, for every row."""
    kind = "table"

    def __init__(self, array: np.ndarray, table: Path):
        self.array = array
        self.float_pixels = array.dtype != np.uint8
        super().__init__([table] * len(array))

    def read(self, i):
        return self.array[i]

    def files(self, i):
        return []

    def digest(self, i):
        return hashlib.sha1(np.ascontiguousarray(self.array[i]).tobytes()).hexdigest()


class Concat(Samples):
    """Train rows, then test rows (the decoded-image cache's order)."""

    def __init__(self, first: Samples, second: Samples):
        if first.kind == second.kind == "file" and len(first) and len(second) and (
                isinstance(first, DeepFiles) != isinstance(second, DeepFiles)):
            deep, flat = (first, second) if isinstance(first, DeepFiles) else (second, first)
            raise PipelineError(f"{deep.paths[0]} is a 16-bit image but {flat.paths[0]} is 8-bit: train and test "
                                f"images must have one depth (their values would not compare)")
        self.parts = [first, second]
        self.kind, self.float_pixels = first.kind, first.float_pixels or second.float_pixels
        self.paths = first.paths + second.paths

    @property
    def cache_dtype(self):
        dtypes = {np.dtype(p.cache_dtype) for p in self.parts}
        return dtypes.pop() if len(dtypes) == 1 else super().cache_dtype

    def _part(self, i):
        n = len(self.parts[0])
        return (self.parts[0], i) if i < n else (self.parts[1], i - n)

    def read(self, i):
        part, j = self._part(i)
        return part.read(j)

    def files(self, i):
        part, j = self._part(i)
        return part.files(j)

    def digest(self, i):
        part, j = self._part(i)
        return part.digest(j)


# The suffixes of the files a source reads one per row (`make predict` lists a folder's files by them).
FILE_SUFFIXES = {"npy": (".npy",), "dicom": (".dcm", ".dicom")}


def file_samples(kind: str, paths) -> Samples:
    """Samples of one file per row: image files (16-bit ones kept so when the first one is), arrays (uint8 kept as
    such when the first one is uint8, as the run's cache holds them) or DICOM."""
    if kind == "npy":
        first = np.load(paths[0], mmap_mode="r", allow_pickle=False) if len(paths) else None
        dtype = np.float32 if first is None else first.dtype
        return NpyFiles(paths, float_pixels=dtype != np.uint8, dtype=dtype)
    if kind == "dicom":
        return DicomFiles(paths)
    return DeepFiles(paths) if len(paths) and is_deep(paths[0]) else Samples(paths)


def as_samples(paths_or_samples) -> Samples:
    """Samples as they are; a list of image files as `file` samples."""
    return paths_or_samples if isinstance(paths_or_samples, Samples) else Samples(paths_or_samples)


def display_image(pixels: np.ndarray) -> np.ndarray:
    """Any source's pixels as an RGB uint8 picture (report thumbnails): the first three channels (one channel
    repeated), float values stretched from their 1st to 99th percentile."""
    pixels = pixels[:, :, :3] if pixels.shape[2] >= 3 else np.repeat(pixels[:, :, :1], 3, axis=2)
    if pixels.dtype == np.uint8:
        return np.ascontiguousarray(pixels)
    low, high = np.percentile(pixels, [1, 99])
    return (np.clip((pixels - low) / max(high - low, 1e-6), 0, 1) * 255).astype(np.uint8)
