"""Where a stage's images come from: every train row, then every test row, by row number.

An ImageStore reads a row from the decoded-image cache (data/cache.py) or decodes its file and resizes it to S x S
with `resize_square`, the function that filled the cache: both give the same pixels. S is
config.training.cache_side (img_size by default); the transforms take the model's img_size from it."""
import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import PipelineError

JPEG_START, PNG_SIGNATURE, GIF_SIGNATURE = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8"
JPEG_END = b"\xff\xd9"  # EOI marker
PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk type and its fixed CRC
JPEG_STANDALONE_MARKERS = {0x00, 0x01, 0xD8, 0xD9, *range(0xD0, 0xD8)}  # markers without a length field
# data.interpolation -> OpenCV flag: every resize (the cache's, the transforms') uses the configured one.
CV2_INTERPOLATIONS = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}
# What PIL raises on a file it cannot read: OSError (UnidentifiedImageError, truncated data, decoder errors),
# ValueError and SyntaxError (format plugins), DecompressionBombError (a header announcing billions of pixels).
PIL_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def decode_in_this_thread(worker_id: int | None = None) -> None:
    """OpenCV without its own thread pool, where a loop decodes and resizes images (a DataLoader's process and its
    workers: also their worker_init_fn): the workers, or the model's threads beside an in-line loader, already
    use the cores, and OpenCV's threads would oversubscribe them."""
    cv2.setNumThreads(0)


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 HxWx3 from any common format, or a PipelineError naming the file: never partly decoded pixels.

    The file is read once; OpenCV decodes it from memory (EXIF orientation, 16-bit PNG scaled, grayscale, CMYK
    JPEG, palette PNG: checked pixel by pixel in tests/test_image_formats.py). Alpha is dropped, not composited.
    GIF goes to PIL (OpenCV paints transparent GIF pixels with the background colour), as does what OpenCV cannot
    decode: PIL says why a file is unreadable."""
    try:
        with open(path, "rb", buffering=0) as file:  # unbuffered: one read of the whole file, no copy
            data = file.read()
    except OSError as e:
        raise PipelineError(f"cannot read image: {path} ({e.strerror})") from None
    if not data:
        raise PipelineError(f"cannot decode image: {path} (empty file)")
    # OpenCV refuses a cut file when it decodes from memory (one it opens itself comes out partly grey), but that
    # is its memory reader's behaviour, not a promise: the end markers are the check, and the message names it.
    if (data.startswith(JPEG_START) and _jpeg_truncated(data)) or (
            data.startswith(PNG_SIGNATURE) and data.rfind(PNG_END) < 0):
        raise PipelineError(f"cannot decode image: {path} (truncated: no end marker after the image data)")
    if not data.startswith(GIF_SIGNATURE):
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is not None:
            return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except UnidentifiedImageError:
        raise PipelineError(f"cannot decode image: {path} (not an image format OpenCV or PIL can read)") from None
    except PIL_ERRORS as e:
        reason = " ".join(str(e).split()) or e.__class__.__name__  # one line, whatever the decoder said
        raise PipelineError(f"cannot decode image: {path} ({reason})") from None


def _jpeg_truncated(data: bytes) -> bool:
    """No EOI marker (FF D9) after the image's first scan: the file was cut (entropy-coded data never holds FF D9).
    A few microseconds, where a second decode with PIL would double the cost; and PIL's own check is gone wherever
    user code sets the global ImageFile.LOAD_TRUNCATED_IMAGES."""
    if data.endswith(JPEG_END):  # the usual file, in 0.1 us: ending in FF D9, it was not cut inside its scans
        return False
    # Bytes after the EOI (motion photos, padding): walk the marker segments to the first scan (SOS), stepping
    # over each by its length so that an EXIF thumbnail's own EOI, inside an APP1 segment, does not count.
    pos = 2
    while (pos := data.find(b"\xff", pos)) >= 0 and pos + 3 < len(data):
        marker = data[pos + 1]
        if marker == 0xDA:
            scan_start = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
            return data.find(JPEG_END, scan_start) < 0
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
        elif marker in JPEG_STANDALONE_MARKERS:
            pos += 2
        else:
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return True


def resize_square(image: np.ndarray, size: int, interpolation: str = "area") -> np.ndarray:
    """An image as the store gives it: resized to size x size (OpenCV, CV2_INTERPOLATIONS[interpolation]), as
    albumentations' Resize would, any number of channels (one kept as H x W x 1); an image already that size is
    returned as it is."""
    if image.shape[:2] == (size, size):
        return image
    resized = cv2.resize(image, (size, size), interpolation=CV2_INTERPOLATIONS[interpolation])
    return resized[:, :, None] if resized.ndim == 2 else resized


def checked_channels(image: np.ndarray, channels: int | None, where) -> np.ndarray:
    """The image, or a one-line error when it has another number of channels than the run's model.in_chans."""
    if channels is not None and image.shape[2] != channels:
        raise PipelineError(f"{where}: {image.shape[2]} channel(s), where the model takes {channels} "
                            f"(model.in_chans; the other images have {channels})")
    return image


class ImageStore:
    """N images by row (train rows first, then test rows): from the cache file when given, else the samples
    (data/sources.py: image files, arrays, DICOM, channel files, table pixels), resized to size x size
    (`resize_square`, as the cache was filled) when `size` is given, else as decoded. `channels`: what every image
    must have (model.in_chans), checked where they are decoded.

    Pickles without the array (workers re-open the memory map), so memory stays flat whatever the data size."""

    def __init__(self, samples, n_train: int, cache_file: Path | None = None, size: int | None = None,
                 interpolation: str = "area", channels: int | None = None):
        from .sources import as_samples

        self.samples, self.n_train, self.cache_file = as_samples(samples), n_train, cache_file
        self.size, self.interpolation, self.channels = size, interpolation, channels
        self._array = None
        self.meta: np.ndarray | None = None  # (rows, F) encoded tabular columns with model.meta_head (Context.images)

    def __len__(self):
        return len(self.samples)

    @property
    def paths(self) -> list[Path]:
        return self.samples.paths

    @property
    def float_pixels(self) -> bool:
        """Float32 images (normalised in the transform) rather than uint8."""
        return self.samples.float_pixels or (self.array is not None and self.array.dtype != np.uint8)

    def decode(self, row: int) -> np.ndarray:
        """Row `row` decoded and resized to the store's size (as the cache holds it)."""
        image = checked_channels(self.samples.read(row), self.channels, self.samples.paths[row])
        return image if self.size is None else resize_square(image, self.size, self.interpolation)

    @property
    def array(self) -> np.ndarray | None:
        if self._array is None and self.cache_file is not None:
            self._array = np.load(self.cache_file, mmap_mode="r")
        return self._array

    def test_rows(self, index) -> np.ndarray:
        """Store rows of test rows `index`."""
        return self.n_train + np.asarray(index, dtype=np.int64)

    def read(self, rows) -> list[np.ndarray]:
        """H x W x C images of `rows` (uint8, or float32 for float sources): S x S (cached, or decoded with a
        size), else as decoded."""
        if self.array is None:
            return [self.decode(r) for r in rows]
        block = self.array[np.asarray(rows, dtype=np.int64)]  # one gather from the memory map per batch
        if block.dtype == np.float16:  # OpenCV has no float16; torch converts at twice numpy's speed (measured)
            import torch

            block = torch.from_numpy(block).float().numpy()
        return list(block)

    def __getstate__(self):
        return {**self.__dict__, "_array": None}
