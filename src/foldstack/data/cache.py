"""The decoded-image cache: every train and test image decoded and resized once into one uint8 array on disk.

cache/<comp>/<key>/images.npy holds (N_train + N_test, S, S, C) uint8 (float for float sources: data/sources.py), read through a memory map (memory stays flat,
forked workers share the pages). S is config.training.cache_side(data): data.img_size unless data.cache_size (or a
crop_pct < 1) keeps more pixels for RandomResizedCrop and evaluation's centre crop. The key hashes both tables'
fingerprints, S and data.interpolation: other data, side or resampling is another folder, never a rewrite. Built
on first use by whichever stage needs images; `runtime.cache=false` reads the files and resizes them the same way
instead, with identical results (data/images.py). No OpenCV import at load."""
import logging
import os
import time
from pathlib import Path

import numpy as np

from ..artifacts import artifact_path, is_complete, staging, write_manifest
from ..config.training import cache_side
from ..utils.io import stable_hash

log = logging.getLogger("foldstack")
FORMAT = 2  # bump when what is stored changes (2: read_image refuses truncated files, GIF transparency via PIL)


class _Decode:
    """Decode + resize one row of a file store (a picklable Dataset for the parallel build)."""

    def __init__(self, store):
        self.store = store

    def __len__(self):
        return len(self.store)

    def __getitem__(self, i):
        return self.store.decode(i)


def _fill(array: np.ndarray, store, workers: int, progress: bool) -> None:
    import torch
    from tqdm import tqdm

    from .images import decode_in_this_thread

    decode_in_this_thread()
    loader = torch.utils.data.DataLoader(_Decode(store), batch_size=256, num_workers=workers,
                                         collate_fn=np.stack, worker_init_fn=decode_in_this_thread)
    start = 0
    for block in tqdm(loader, desc="decoding images into the cache", leave=False, disable=None if progress else True):
        array[start:start + len(block)] = block
        start += len(block)


def cache_key(fingerprints: list[str], size: int, interpolation: str, source: str = "file") -> str:
    extra = {} if source == "file" else dict(source=source)  # the keys of image-file caches stay what they were
    return stable_hash(dict(tables=fingerprints, size=size, interpolation=interpolation, format=FORMAT, **extra), 16)


def file_store(samples, n_train: int, cfg):
    """An ImageStore of the samples (data/sources.py, or a list of image files), decoded and resized to S as the
    cache would be (runtime.cache=false, images outside the competition)."""
    from .images import ImageStore

    return ImageStore(samples, n_train, size=cache_side(cfg.data), interpolation=cfg.data.interpolation,
                      channels=cfg.model.in_chans)


def image_store(ctx, workers: int = 0):
    """Train then test images (an ImageStore of S x S images) from the cache, built now if missing, or from the
    files when runtime.cache is off. Parallel folds may build it at once: the first rename wins. `workers`: decoding
    processes (engine.runtime.decode_workers; 0: this one)."""
    from .images import ImageStore

    store = file_store(ctx.train.samples + ctx.test.samples, len(ctx.train.samples), ctx.cfg)
    if not ctx.cfg.runtime.cache:
        return store
    size, interpolation, n_train, paths = store.size, store.interpolation, store.n_train, store.paths
    fingerprints = [ctx.train.fingerprint(), ctx.test.fingerprint()]
    source = ctx.cfg.competition.image_source
    deep = source == "file" and store.samples.float_pixels  # 16-bit image files: a float cache of their own
    key = cache_key(fingerprints, size, interpolation, "file16" if deep else source)
    path = artifact_path(ctx.root, "cache", ctx.comp, key)
    if not is_complete(path):
        t0 = time.time()
        try:
            with staging(path) as tmp:
                dtype = store.samples.cache_dtype  # uint8; float16 arrays as such; other floats as float32
                array = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=dtype,
                                                  shape=(len(paths), size, size, store.channels))
                with open(tmp / "images.npy", "r+b") as fh:  # a full disk: ENOSPC (one line) now, not SIGBUS
                    os.posix_fallocate(fh.fileno(), 0, os.path.getsize(tmp / "images.npy"))  # mid-write
                _fill(array, store, workers, ctx.cfg.runtime.progress)
                array.flush()
                del array
                write_manifest(tmp, "cache", key, dict(size=size, interpolation=interpolation), fold_key=None,
                               inputs=dict(train=ctx.train.source, test=ctx.test.source, fingerprints=fingerprints),
                               metrics=dict(seconds=round(time.time() - t0, 2)), rows=dict(train=n_train,
                                                                                          test=len(paths) - n_train))
        except OSError:
            if not is_complete(path):  # not a lost race with another process building the same cache
                raise
        log.info(f"decoded-image cache: {len(paths)} images at {size}px in {time.time() - t0:.1f}s "
                 f"({Path(path, 'images.npy').stat().st_size / 2**20:.0f} MiB) -> {path}")
    return ImageStore(store.samples, n_train, path / "images.npy", size=size, interpolation=interpolation,
                      channels=store.channels)
