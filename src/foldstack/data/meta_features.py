"""Cheap per-image features for the level-2 model, read from file headers (no decoding)."""
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import PipelineError


def image_meta_features(paths: list[Path], names: list[str]) -> np.ndarray:
    """(N, len(names)) float matrix of width / height / aspect (w/h) / file_size (bytes) per image."""
    from .images import PIL_ERRORS  # OpenCV with it: only when meta features are asked for

    out = np.zeros((len(paths), len(names)))
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as im:  # lazy: reads the header only
                width, height = im.size
        except PIL_ERRORS:
            raise PipelineError(f"cannot read image header: {path}") from None
        values = dict(width=width, height=height, aspect=width / height, file_size=Path(path).stat().st_size)
        out[i] = [values[n] for n in names]
    return out
