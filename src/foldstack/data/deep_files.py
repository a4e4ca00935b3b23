"""Decoders of image files deeper than 8 bits a channel, for data/sources.py: DICOM (pydicom) and 16-bit TIFF /
PNG (OpenCV, unchanged). Both give H x W x C float32 in the file's own units."""
from pathlib import Path

import numpy as np

from ..errors import PipelineError


def read_deep(path: Path) -> np.ndarray:
    """A 16-bit image file as float32 (0..65,535): grey as 1 channel, colour as RGB (alpha dropped)."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise PipelineError(f"cannot decode image: {path}" + ("" if Path(path).is_file() else " (missing)"))
    if image.dtype != np.uint16:
        raise PipelineError(f"{path}: {image.dtype} pixels, where the first images are 16-bit")
    if image.ndim == 2:
        return image[:, :, None].astype(np.float32)
    colour = cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(image, colour).astype(np.float32)


def is_deep(path: Path) -> bool:
    """A 16-bit image file (its first page decoded unchanged); False when OpenCV cannot read it (read_image says
    why when the row is read)."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if Path(path).suffix.lower() != ".gif" else None
    return image is not None and image.dtype == np.uint16


def read_dicom(path: Path) -> np.ndarray:
    """H x W x 1 (3 for colour) float32 in the modality's units: slope/intercept applied, MONOCHROME1 inverted (so
    bright is dense, as in MONOCHROME2), clipped to the first window of the tags when they give one."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError) as e:
        raise PipelineError(f"cannot read DICOM: {path} ({' '.join(str(e).split())})") from None
    if "PixelData" not in ds:
        raise PipelineError(f"{path}: a DICOM without pixel data")
    try:
        pixels = ds.pixel_array.astype(np.float32)
    except (RuntimeError, ValueError, NotImplementedError) as e:  # a transfer syntax without its decoder installed
        raise PipelineError(f"cannot decode DICOM pixels: {path} ({' '.join(str(e).split())})") from None
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise PipelineError(f"{path}: {ds.NumberOfFrames} frames; one image per file is expected")
    pixels = pixels * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":
        pixels = pixels.max() + pixels.min() - pixels
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is not None and width is not None:
        first = (lambda v: float(v[0]) if isinstance(v, pydicom.multival.MultiValue) else float(v))
        c, w = first(center), first(width)
        pixels = np.clip(pixels, c - w / 2, c + w / 2)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels
