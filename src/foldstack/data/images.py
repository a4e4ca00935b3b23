"""Where a stage's images come from: every train row, then every test row, by row number.

An ImageStore reads a row either from the decoded-image cache (a uint8 (N, S, S, 3) memory-mapped array, see
`data/cache.py`) or by decoding its file. Both give the same pixels after the transforms' first op (Resize to S):
the cache holds exactly that op's output, and resizing an S x S image to S x S is the identity."""
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..errors import PipelineError

cv2.setNumThreads(0)  # DataLoader workers already parallelise; OpenCV threads would oversubscribe the cores


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 HxWx3 from any common format (OpenCV first; PIL for GIF and what OpenCV cannot read)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is not None:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception:
        raise PipelineError(f"cannot decode image: {path}") from None


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """The transforms' first op (albumentations Resize, INTER_AREA) done once, for the cache."""
    if image.shape[:2] == (size, size):
        return image
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


class ImageStore:
    """N images by row (train rows first, then test rows): from the cache file when given, else the files.

    Pickles without the array (workers re-open the memory map), so memory stays flat whatever the data size."""

    def __init__(self, paths: list, n_train: int, cache_file: Path | None = None):
        self.paths, self.n_train, self.cache_file = list(paths), n_train, cache_file
        self._array = None

    def __len__(self):
        return len(self.paths)

    @property
    def array(self) -> np.ndarray | None:
        if self._array is None and self.cache_file is not None:
            self._array = np.load(self.cache_file, mmap_mode="r")
        return self._array

    def test_rows(self, index) -> np.ndarray:
        """Store rows of test rows `index`."""
        return self.n_train + np.asarray(index, dtype=np.int64)

    def read(self, rows) -> list[np.ndarray]:
        """RGB uint8 images of `rows` (cached ones are S x S, files as decoded)."""
        if self.array is None:
            return [read_image(self.paths[r]) for r in rows]
        block = self.array[np.asarray(rows, dtype=np.int64)]  # one gather from the memory map per batch
        return list(block)

    def __getstate__(self):
        return {**self.__dict__, "_array": None}
