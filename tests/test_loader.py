"""The decoded-image cache and the loader: same pixels as the files, batches independent of the worker count."""
import pickle
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from foldstack.config.schema import Config
from foldstack.data.cache import image_store
from foldstack.data.dataset import ImageDataset, SeededBatches, make_loader, reseed_epoch, seeded
from foldstack.engine.runtime import auto_workers
from foldstack.data.images import ImageStore
from foldstack.data.sources import Samples
from foldstack.data.transforms import build_transforms


def write_images(folder: Path, shapes) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate(shapes):
        paths.append(folder / f"img{i}.png")
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(paths[-1]), rng.integers(0, 256, (h, w, 3), np.uint8))
    return paths


def fake_context(root: Path, paths: list, n_train: int, size: int, fingerprint: str = "f"):
    def table(rows):
        return SimpleNamespace(paths=rows, samples=Samples(rows), fingerprint=lambda: fingerprint, source="table.csv")
    cfg = Config.model_validate({"data": {"img_size": size}, "runtime": {"num_workers": 0, "progress": False}})
    return SimpleNamespace(root=root, comp="c", cfg=cfg, train=table(paths[:n_train]), test=table(paths[n_train:]))


# odd sizes: downscaled, upscaled, non-square, already at size
SHAPES = [(48, 30), (16, 16), (64, 64), (24, 24), (20, 37), (100, 60)]


def test_cached_images_give_the_same_training_batches_as_the_files(tmp_path):
    paths = write_images(tmp_path / "img", SHAPES)
    cached = image_store(fake_context(tmp_path, paths, 4, 24))
    files = ImageStore(paths, n_train=4)
    assert cached.array.shape == (6, 24, 24, 3) and files.array is None
    assert np.array_equal(cached.test_rows([0, 1]), [4, 5])
    cfg = Config.model_validate({"data": {"img_size": 24, "augment": "medium", "vflip": True}})
    for train in (True, False):
        a = ImageDataset(cached, np.arange(6), None, build_transforms(cfg.data, train))
        b = ImageDataset(files, np.arange(6), None, build_transforms(cfg.data, train))
        batch = seeded([5, 0, 3, 1], seed=11) if train else [5, 0, 3, 1]
        assert all(torch.equal(x, y) for (x, _), (y, _) in zip(a.__getitems__(batch), b.__getitems__(batch)))


def test_the_cache_is_built_once_per_data_and_size_and_pickles_without_its_pixels(tmp_path):
    paths = write_images(tmp_path / "img", SHAPES)
    first = image_store(fake_context(tmp_path, paths, 4, 24))
    stamp = (first.cache_file.parent / "manifest.json").stat().st_mtime_ns
    again = image_store(fake_context(tmp_path, paths, 4, 24))
    assert again.cache_file == first.cache_file
    assert (first.cache_file.parent / "manifest.json").stat().st_mtime_ns == stamp  # reused, not rebuilt
    other_size = image_store(fake_context(tmp_path, paths, 4, 16))
    other_data = image_store(fake_context(tmp_path, paths, 4, 24, fingerprint="g"))
    assert len({first.cache_file, other_size.cache_file, other_data.cache_file}) == 3
    assert first.array is not None and len(pickle.dumps(first)) < first.array.nbytes / 4  # workers re-open the map
    clone = pickle.loads(pickle.dumps(first))
    assert np.array_equal(clone.read([2, 0])[1], first.read([0])[0])
    off = fake_context(tmp_path / "off", paths, 4, 24)
    off.cfg = off.cfg.model_copy(update={"runtime": off.cfg.runtime.model_copy(update={"cache": False})})
    assert image_store(off).array is None and not (tmp_path / "off" / "cache").exists()


def test_seeded_batches_are_a_function_of_the_seed_and_ddp_ranks_split_each_batch():
    def epoch(seed, rank=0, world=1):
        g = torch.Generator()
        batches = SeededBatches(torch.utils.data.RandomSampler(range(22), generator=g), 8, True, g, rank, world)
        g.manual_seed(seed)
        out = [([i for i, _ in b], {s for _, s in b}) for b in batches]
        assert all(len(seeds) == 1 for _, seeds in out)  # one seed per batch, in every index
        return [(rows, seeds.pop()) for rows, seeds in out]

    a, b = epoch(3), epoch(4)
    assert a == epoch(3) and a != b and len(a) == 2 and all(len(rows) == 8 for rows, _ in a)
    assert len({s for _, s in a}) == 2  # each batch its own augmentation seed
    halves = [epoch(3, r, 2) for r in (0, 1)]
    for k, (rows, _) in enumerate(a):  # the two ranks' slices partition the single-process batch
        assert sorted(halves[0][k][0] + halves[1][k][0]) == sorted(rows) and len(halves[0][k][0]) == 4
    assert halves[0][0][1] != halves[1][0][1]


@pytest.mark.parametrize("train", [True, False])
def test_batches_do_not_depend_on_the_worker_count_and_persistent_workers_replay_an_epoch(tmp_path, train):
    paths = write_images(tmp_path / "img", [(20, 20)] * 10)
    cfg = Config.model_validate({"data": {"img_size": 16, "augment": "heavy"}})
    targets = np.eye(2, dtype=np.float32)[np.arange(10) % 2]

    def epochs(workers, seeds):
        ds = ImageDataset(ImageStore(paths, 10), np.arange(10), targets, build_transforms(cfg.data, train))
        loader = make_loader(ds, 4, workers, train=train, drop_last=train)
        out = []
        for seed in seeds:
            if train:
                reseed_epoch(loader, seed)
            out.append([(x.clone(), y.clone()) for x, y in loader])
        return out

    def same(a, b):
        return all(torch.equal(x, u) and torch.equal(y, v) for (x, y), (u, v) in zip(a, b, strict=True))

    serial, parallel = epochs(0, [1, 2, 1]), epochs(2, [1, 2, 1])
    assert all(same(s, p) for s, p in zip(serial, parallel))
    assert same(parallel[0], parallel[2])  # the same workers, reseeded: the epoch again
    assert not same(parallel[0], parallel[1]) if train else same(parallel[0], parallel[1])
    assert serial[0][0][0].dtype == torch.uint8  # normalised on the device, not in the workers


def test_auto_workers_follow_the_cores(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)))
    assert auto_workers(torch.device("cuda")) == 15
    assert auto_workers(torch.device("cuda"), processes_per_machine=4) == 3  # torchrun: 4 ranks share the cores
    assert auto_workers(torch.device("cpu")) == 0  # the model's threads use every core
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0})
    assert auto_workers(torch.device("cuda")) == 1
