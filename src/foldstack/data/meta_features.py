"""Cheap per-image features for the level-2 model, read from file headers (no decoding)."""
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import PipelineError


def image_meta_features(samples, names: list[str]) -> np.ndarray:
    """(N, len(names)) float matrix of width / height / aspect (w/h) / file_size (bytes) per image file
    (data/sources.py `file` samples, or a list of files)."""
    from .images import PIL_ERRORS  # OpenCV with it: only when meta features are asked for
    from .sources import as_samples

    samples = as_samples(samples)
    if samples.kind != "file":
        raise PipelineError(f"stack.meta_features {names} are read from image file headers; this competition's "
                            f"images are {samples.kind} (competition.image_source): set stack.meta_features to []")
    paths = samples.paths

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
