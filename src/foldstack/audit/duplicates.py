"""Exact-duplicate images: a SHA-1 of each file's bytes, cached per file (path, size, mtime) in
cache/<comp>/file_hashes.json, so a second `make audit` or `folds.dedupe` split reads no image again.

Torch-free: hashing reads bytes, never decodes."""
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from ..utils.io import atomic_write_json

log = logging.getLogger("foldstack")
CACHE_NAME = "file_hashes.json"


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_hashes(samples, cache_dir: Path | None = None, progress: bool = True, desc: str = "hashing images") -> list:
    """SHA-1 of every row's image (data/sources.py samples, or a list of files), in order. Rows of one file each:
    with cache_dir, hashes of files whose path, size and mtime are unchanged come from cache_dir/file_hashes.json
    (rewritten atomically when something new was hashed). Channel files and table pixels: hashed each time."""
    from tqdm import tqdm

    from ..data.sources import as_samples

    samples = as_samples(samples)
    if samples.kind in ("channel_files", "table"):
        return [samples.digest(i) for i in tqdm(range(len(samples)), desc=desc, leave=False,
                                                 disable=None if progress else True)]
    paths = samples.paths
    cache_file = Path(cache_dir) / CACHE_NAME if cache_dir is not None else None
    try:
        cache = json.loads(cache_file.read_text()) if cache_file is not None and cache_file.is_file() else {}
    except (OSError, ValueError):
        cache = {}  # a damaged cache is only slower
    stats = [os.stat(p) for p in paths]
    out, todo = [None] * len(stats), []
    for i, (p, st) in enumerate(zip(paths, stats)):
        hit = cache.get(str(p))
        if isinstance(hit, list) and len(hit) == 3 and hit[:2] == [st.st_size, st.st_mtime_ns]:
            out[i] = hit[2]
        else:
            todo.append(i)
    if todo:
        for i in tqdm(todo, desc=desc, leave=False, disable=None if progress else True):
            out[i] = _sha1(paths[i])
            cache[str(paths[i])] = [stats[i].st_size, stats[i].st_mtime_ns, out[i]]
        if cache_file is not None:
            try:
                atomic_write_json(cache_file, cache)
            except OSError as e:  # read-only project: hashing still works, it is just not remembered
                log.warning(f"could not write the hash cache {cache_file} ({e.__class__.__name__})")
    return out


def union_groups(n: int, *keys) -> np.ndarray:
    """Connected components of rows that share any key (a list/array per kind of key, None to skip): int64 ids,
    numbered by first row. Rows with equal content hash or equal group value end up in one component."""
    parent = np.arange(n)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for key in keys:
        if key is None:
            continue
        first = {}
        for i, value in enumerate(key):
            j = first.setdefault(value, i)
            if j != i:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    roots = np.array([find(i) for i in range(n)])
    _, ids = np.unique(roots, return_inverse=True)
    return ids.astype(np.int64)


def duplicate_sets(hashes) -> list[list[int]]:
    """Row indices of each hash that occurs more than once, in order of first occurrence."""
    rows = {}
    for i, h in enumerate(hashes):
        rows.setdefault(h, []).append(i)
    return [r for r in rows.values() if len(r) > 1]
