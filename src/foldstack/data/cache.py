"""The decoded-image cache: every train and test image decoded and resized once into one uint8 array on disk.

cache/<comp>/<key>/images.npy holds (N_train + N_test, S, S, 3) uint8, read through a memory map, so memory stays
flat as the data grows and forked workers share the pages. The key hashes both tables' fingerprints (ids, labels,
file names and sizes) and S = data.img_size: new data or another size is another folder, never a rewrite.
It is built on first use by whichever stage needs images (decoding in parallel on every core), and
`runtime.cache=false` reads the files instead: results are identical (see `data/images.py`)."""
import logging
import os
import time
from pathlib import Path

import numpy as np

from ..artifacts import artifact_path, is_complete, staging, write_manifest
from ..utils.io import stable_hash
from .images import ImageStore, read_image, resize_square

log = logging.getLogger("foldstack")
FORMAT = 2  # bump when what is stored changes (2: read_image refuses truncated files, GIF transparency via PIL)


class _Decode:
    """Decode + resize one file (a picklable Dataset for the parallel build)."""

    def __init__(self, paths, size):
        self.paths, self.size = paths, size

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return resize_square(read_image(self.paths[i]), self.size)


def _fill(array: np.ndarray, paths: list, size: int, workers: int, progress: bool) -> None:
    import torch
    from tqdm import tqdm

    loader = torch.utils.data.DataLoader(_Decode(paths, size), batch_size=256, num_workers=workers,
                                         collate_fn=np.stack)
    start = 0
    for block in tqdm(loader, desc="decoding images into the cache", leave=False, disable=None if progress else True):
        array[start:start + len(block)] = block
        start += len(block)


def cache_key(fingerprints: list[str], size: int) -> str:
    return stable_hash(dict(tables=fingerprints, size=size, format=FORMAT), 16)


def image_store(ctx) -> ImageStore:
    """Train then test images of the competition, from the cache (built now if missing) unless runtime.cache is
    off. Parallel `make -j` folds may build it at once: the first rename wins, the others use it."""
    workers = os.cpu_count() if ctx.cfg.runtime.num_workers == "auto" else ctx.cfg.runtime.num_workers
    paths, n_train = list(ctx.train.paths) + list(ctx.test.paths), len(ctx.train.paths)
    if not ctx.cfg.runtime.cache:
        return ImageStore(paths, n_train)
    size = ctx.cfg.data.img_size
    fingerprints = [ctx.train.fingerprint(), ctx.test.fingerprint()]
    key = cache_key(fingerprints, size)
    path = artifact_path(ctx.root, "cache", ctx.comp, key)
    if not is_complete(path):
        t0 = time.time()
        try:
            with staging(path) as tmp:
                array = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8,
                                                  shape=(len(paths), size, size, 3))
                with open(tmp / "images.npy", "r+b") as fh:  # a full disk: ENOSPC (one line) now, not SIGBUS
                    os.posix_fallocate(fh.fileno(), 0, os.path.getsize(tmp / "images.npy"))  # mid-write
                _fill(array, paths, size, workers, ctx.cfg.runtime.progress)
                array.flush()
                del array
                write_manifest(tmp, "cache", key, dict(img_size=size), fold_key=None,
                               inputs=dict(train=ctx.train.source, test=ctx.test.source, fingerprints=fingerprints),
                               metrics=dict(seconds=round(time.time() - t0, 2)), rows=dict(train=n_train,
                                                                                          test=len(paths) - n_train))
        except OSError:
            if not is_complete(path):  # not a lost race with another process building the same cache
                raise
        log.info(f"decoded-image cache: {len(paths)} images at {size}px in {time.time() - t0:.1f}s "
                 f"({Path(path, 'images.npy').stat().st_size / 2**20:.0f} MiB) -> {path}")
    return ImageStore(paths, n_train, path / "images.npy")
