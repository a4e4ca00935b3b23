"""Fine-tuning at real resolution: a decoded-image cache of S x S squares larger than img_size (data.cache_size),
RandomResizedCrop from those pixels (data.rrc) and timm's evaluation resize + centre crop (data.crop_pct), with
the resampling of data.interpolation. The cache and the files give the same batches."""
from pathlib import Path
from types import SimpleNamespace

import albumentations as A
import cv2
import numpy as np
import pytest
import torch
from albumentations.pytorch import ToTensorV2

from foldstack.data.sources import Samples
from foldstack.config.loading import resolve
from foldstack.config.schema import Config
from foldstack.config.training import Data
from foldstack.config.training import cache_side, eval_side
from foldstack.context import Context
from foldstack.data.cache import FORMAT, cache_key, file_store, image_store
from foldstack.data.dataset import ImageDataset, seeded
from foldstack.data.images import CV2_INTERPOLATIONS, read_image, resize_square
from foldstack.data.transforms import build_transforms
from foldstack.engine.inference import inference_loader
from foldstack.errors import PipelineError
from foldstack.utils.io import stable_hash

from conftest import make_competition, run_here

# odd sizes: downscaled, upscaled, non-square, already at a side
SHAPES = [(48, 30), (16, 16), (64, 64), (36, 36), (20, 37), (100, 60)]


def write_images(folder: Path, shapes, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (h, w) in enumerate(shapes):
        paths.append(folder / f"img{i}.png")
        cv2.imwrite(str(paths[-1]), rng.integers(0, 256, (h, w, 3), np.uint8))
    return paths


def fake_context(root: Path, paths: list, n_train: int, data: dict, cache: bool = True):
    def table(rows):
        return SimpleNamespace(paths=rows, samples=Samples(rows), fingerprint=lambda: "f", source="table.csv")
    cfg = Config.model_validate({"data": data, "runtime": {"num_workers": 0, "progress": False, "cache": cache}})
    return SimpleNamespace(root=root, comp="c", cfg=cfg, train=table(paths[:n_train]), test=table(paths[n_train:]))


def centre(image: np.ndarray, size: int) -> np.ndarray:
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    return image[top:top + size, left:left + size]


def chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)


def test_the_cache_side_follows_cache_size_crop_pct_and_img_size():
    assert cache_side(Data(img_size=64)) == 64 and eval_side(Data(img_size=64)) == 64
    assert cache_side(Data(img_size=64, cache_size=80)) == 80  # pixels
    assert cache_side(Data(img_size=64, cache_size=1.5)) == 96  # a multiple
    assert cache_side(Data(img_size=224, cache_size=1.15)) == 258  # round(257.6)
    assert cache_side(Data(img_size=64, cache_size=2.0)) == 128  # a float is a multiple even when whole
    # unset with crop_pct < 1: exactly what evaluation resizes to, so that resize is the identity
    assert cache_side(Data(img_size=224, crop_pct=0.875)) == eval_side(Data(img_size=224, crop_pct=0.875)) == 256
    assert cache_side(Data(img_size=224, crop_pct=0.875, cache_size=300)) == 300


def test_the_cache_holds_s_squares_equal_to_resize_square_of_each_file(tmp_path):
    paths = write_images(tmp_path / "img", SHAPES)
    for data, side in [({"img_size": 24, "cache_size": 1.5, "interpolation": "bicubic"}, 36),
                       ({"img_size": 32, "crop_pct": 0.875}, 37)]:
        store = image_store(fake_context(tmp_path, paths, 4, data))
        assert store.array.shape == (6, side, side, 3) and store.array.dtype == np.uint8
        interpolation = data.get("interpolation", "area")
        for row, path in enumerate(paths):
            assert np.array_equal(store.array[row], resize_square(read_image(path), side, interpolation))
        files = image_store(fake_context(tmp_path / "off", paths, 4, data, cache=False))
        assert files.array is None and not (tmp_path / "off" / "cache").exists()
        assert all(np.array_equal(a, b) for a, b in zip(store.read(range(6)), files.read(range(6)), strict=True))
    # another resampling is another cache, with other pixels
    area = image_store(fake_context(tmp_path, paths, 4, {"img_size": 24, "cache_size": 1.5}))
    bicubic = image_store(fake_context(tmp_path, paths, 4, {"img_size": 24, "cache_size": 1.5,
                                                            "interpolation": "bicubic"}))
    assert area.cache_file != bicubic.cache_file and not np.array_equal(area.array[0], bicubic.array[0])


def test_cache_and_files_give_identical_batches_with_cache_size_rrc_and_crop_pct(tmp_path):
    paths = write_images(tmp_path / "img", SHAPES)
    data = {"img_size": 24, "cache_size": 1.5, "rrc": True, "crop_pct": 0.875, "augment": "medium", "vflip": True,
            "interpolation": "bilinear"}
    cached = image_store(fake_context(tmp_path, paths, 4, data))
    files = image_store(fake_context(tmp_path / "off", paths, 4, data, cache=False))
    cfg = Data(**data)
    assert cached.array.shape[1] == 36 and files.array is None
    for train in (True, False):
        a = ImageDataset(cached, np.arange(6), None, build_transforms(cfg, train))
        b = ImageDataset(files, np.arange(6), None, build_transforms(cfg, train))
        for seed in (11, 12):
            batch = seeded([5, 0, 3, 1], seed=seed) if train else [5, 0, 3, 1]
            xa, xb = [x for x, _ in a.__getitems__(batch)], [x for x, _ in b.__getitems__(batch)]
            assert all(x.shape == (3, 24, 24) for x in xa)
            assert all(torch.equal(x, y) for x, y in zip(xa, xb, strict=True))
    # the crops are random in training: two seeds, other pixels
    t = ImageDataset(cached, np.arange(6), None, build_transforms(cfg, True))
    one, two = t.__getitems__(seeded([0], seed=1))[0][0], t.__getitems__(seeded([0], seed=2))[0][0]
    assert not torch.equal(one, two)


@pytest.mark.parametrize("interpolation", ["area", "bilinear", "bicubic"])
def test_rrc_of_the_whole_square_is_the_plain_resize(interpolation):
    image = np.random.default_rng(1).integers(0, 256, (37, 37, 3), np.uint8)
    common = dict(img_size=24, augment="none", hflip=False, interpolation=interpolation)
    rrc = build_transforms(Data(**common, rrc=True, rrc_scale=[1, 1], rrc_ratio=[1, 1]), train=True)
    plain = build_transforms(Data(**common), train=True)
    expected = chw(cv2.resize(image, (24, 24), interpolation=CV2_INTERPOLATIONS[interpolation]))
    for seed in range(4):
        rrc.set_random_seed(seed)
        plain.set_random_seed(seed)
        assert torch.equal(rrc(image=image)["image"], expected) and torch.equal(plain(image=image)["image"], expected)


def test_rrc_crops_come_from_the_full_resolution_cached_pixels(tmp_path):
    """Noise at 64 px, the model at 16 px: a 1/16-area square crop of the 64 px cache is a 16 x 16 window of its
    real pixels (resizing 16 to 16 is the identity), sharp; the same crop of a 16 px cache is a 4 x 4 patch
    blown up to 16, smooth."""
    paths = write_images(tmp_path / "img", [(64, 64)] * 3)
    rrc = {"img_size": 16, "rrc": True, "rrc_scale": [1 / 16, 1 / 16], "rrc_ratio": [1, 1], "augment": "none",
           "hflip": False}
    full = image_store(fake_context(tmp_path, paths, 3, {**rrc, "cache_size": 64}))
    small = image_store(fake_context(tmp_path, paths, 3, rrc))
    assert full.array.shape[1:3] == (64, 64) and small.array.shape[1:3] == (16, 16)
    t = build_transforms(Data(**rrc), train=True)

    def crops(store, seed):
        return [x.permute(1, 2, 0).numpy() for x, _ in
                ImageDataset(store, np.arange(3), None, t).__getitems__(seeded([0, 1, 2], seed=seed))]

    def roughness(x):  # mean absolute difference of horizontal neighbours
        return np.abs(np.diff(x.astype(np.int16), axis=1)).mean()

    windows = set()
    for seed in range(3):
        for row, crop in enumerate(crops(full, seed)):
            source = full.array[row]
            where = [(y, x) for y in range(49) for x in range(49) if np.array_equal(source[y:y + 16, x:x + 16], crop)]
            assert len(where) == 1  # one window of the cached pixels, unchanged
            windows.add((row, where[0]))
        for sharp, smooth in zip(crops(full, seed), crops(small, seed)):
            assert roughness(sharp) > 60 and roughness(smooth) < 0.5 * roughness(sharp)
    assert len(windows) > 3  # crops at several places


@pytest.mark.parametrize("cache_size, interpolation", [(None, "area"), (48, "bilinear"), (1.5, "bicubic")])
def test_eval_with_crop_pct_is_the_centre_crop_of_the_resize(tmp_path, cache_size, interpolation):
    paths = write_images(tmp_path / "img", [(50, 70), (90, 90)])
    data = {"img_size": 32, "crop_pct": 0.875, "cache_size": cache_size, "interpolation": interpolation}
    side, flag = cache_side(Data(**data)), CV2_INTERPOLATIONS[interpolation]
    assert eval_side(Data(**data)) == 37 == round(32 / 0.875) and side == {None: 37, 48: 48, 1.5: 48}[cache_size]
    store = image_store(fake_context(tmp_path, paths, 2, data))
    out = [x for x, _ in ImageDataset(store, [0, 1], None, build_transforms(Data(**data), False)).__getitems__([0, 1])]
    for x, path in zip(out, paths, strict=True):
        image = cv2.resize(read_image(path), (side, side), interpolation=flag)  # the cache
        image = cv2.resize(image, (37, 37), interpolation=flag) if side != 37 else image  # evaluation's resize
        assert x.shape == (3, 32, 32) and torch.equal(x, chw(centre(image, 32)))
    # crop_pct=1 (the default): a resize to img_size, from whatever S the cache keeps
    plain = build_transforms(Data(img_size=32, cache_size=48, interpolation=interpolation), train=False)
    square = store.read([0])[0]
    assert torch.equal(plain(image=square)["image"], chw(cv2.resize(square, (32, 32), interpolation=flag)))


def test_the_cache_key_hashes_the_resampling_and_eval_keeps_its_transform(tmp_path):
    fingerprints = ["train-fp", "test-fp"]
    formula = stable_hash(dict(tables=fingerprints, size=64, interpolation="area", format=FORMAT), 16)
    assert cache_key(fingerprints, 64, "area") == formula
    assert len({formula, cache_key(fingerprints, 64, "bilinear"), cache_key(fingerprints, 73, "area")}) == 3
    paths = write_images(tmp_path / "img", SHAPES)
    store = image_store(fake_context(tmp_path, paths, 4, {"img_size": 24}))
    assert store.cache_file.parent.name == stable_hash(dict(tables=["f", "f"], size=24, interpolation="area",
                                                            format=FORMAT), 16)
    assert store.array.shape == (6, 24, 24, 3)
    image = np.random.default_rng(2).integers(0, 256, (40, 30, 3), np.uint8)
    plain_eval = A.Compose([A.Resize(24, 24, interpolation=cv2.INTER_AREA), ToTensorV2()], seed=0)
    ours = build_transforms(Data(img_size=24), False)(image=image)["image"]
    assert torch.equal(ours, plain_eval(image=image)["image"])


def test_each_training_op_draws_from_its_own_seed():
    """HorizontalFlip and VerticalFlip draw alike (one number per call): seeded alike, as A.Compose seeds its
    children, they would fire together or not at all. Each op gets its own seed: all four combinations occur,
    and a seed replays its own."""
    image = np.random.default_rng(3).integers(0, 256, (24, 24, 3), np.uint8)
    t = build_transforms(Data(img_size=24, augment="none", hflip=True, vflip=True), train=True)
    views = {chw(v).numpy().tobytes(): name for name, v in
             [("none", image), ("h", image[:, ::-1]), ("v", image[::-1]), ("hv", image[::-1, ::-1])]}
    drawn = []
    for seed in range(16):
        t.set_random_seed(seed)
        drawn.append(views[t(image=image)["image"].numpy().tobytes()])
    assert set(drawn) == {"none", "h", "v", "hv"}
    t.set_random_seed(5)
    assert views[t(image=image)["image"].numpy().tobytes()] == drawn[5]


def test_images_outside_the_competition_go_through_the_s_resize_and_the_eval_transform(tmp_path):
    """What `make predict IMAGES=...` feeds the models (file_store + inference_loader) is the test rows' batches."""
    paths = write_images(tmp_path / "img", SHAPES)
    data = {"img_size": 24, "cache_size": 1.5, "crop_pct": 0.875, "interpolation": "bicubic", "batch_size": 2}
    ctx = fake_context(tmp_path, paths, 4, data)
    cached = image_store(ctx)
    rows = cached.test_rows([0, 1])
    from_cache = torch.cat([x for x, _ in inference_loader(ctx.cfg, cached, rows, "cpu")])
    from_files = torch.cat([x for x, _ in inference_loader(ctx.cfg, file_store(paths[4:], 0, ctx.cfg),
                                                           np.arange(2), "cpu")])
    assert from_cache.shape == (2, 3, 24, 24) and torch.equal(from_cache, from_files)
    other = fake_context(tmp_path, paths, 4, {**data, "cache_size": None})  # S = 27: another store
    with pytest.raises(PipelineError, match="36px squares for a config whose cache side is 27px"):
        inference_loader(other.cfg, cached, rows, "cpu")


def test_contexts_share_images_only_when_the_store_is_the_same():
    def ctx(**data):
        return Context(Path("."), "c", "baseline", Config.model_validate({"data": {"img_size": 64, **data}}))

    base = ctx()
    assert "images" in base.shared_with(ctx(batch_size=8).cfg)
    assert "images" in base.shared_with(ctx(cache_size=64).cfg)  # S = 64 either way
    assert "images" in ctx(cache_size=80).shared_with(ctx(img_size=72, cache_size=80).cfg)  # one 80 px store
    assert "images" in ctx(crop_pct=0.875).shared_with(ctx(cache_size=73).cfg)  # round(64 / 0.875) = 73
    for other in (ctx(cache_size=1.5), ctx(crop_pct=0.875), ctx(interpolation="bicubic"), ctx(img_size=72)):
        shared = base.shared_with(other.cfg)
        assert shared == ("train", "test", "targets")


BAD = [
    ({"img_size": 32, "cache_size": 16}, ["data.cache_size=16", "data.img_size=32"]),
    ({"img_size": 32, "cache_size": 0.9}, ["data.cache_size=0.9", "below 1"]),
    ({"img_size": 32, "cache_size": 64.0}, ["data.cache_size=64.0", "above 4", "an int, e.g. 64"]),
    ({"img_size": 32, "crop_pct": 0.875, "cache_size": 36}, ["data.crop_pct=0.875", "37 px", "data.cache_size=36"]),
    ({"img_size": 32, "crop_pct": 0.8, "cache_size": 1.15}, ["data.crop_pct=0.8", "40 px", "(37 px"]),
    ({"rrc": True, "rrc_scale": [0.9, 0.2]}, ["data.rrc_scale=[0.9, 0.2]", "min <= max <= 1"]),
    ({"rrc_scale": [0.5, 1.5]}, ["data.rrc_scale=[0.5, 1.5]"]),
    ({"rrc_ratio": [0.0, 1.0]}, ["data.rrc_ratio=[0.0, 1.0]", "0 < min <= max"]),
    ({"rrc_ratio": [1.5, 0.75]}, ["data.rrc_ratio=[1.5, 0.75]"]),
]


@pytest.mark.parametrize("data, fragments", BAD)
def test_impossible_sizes_and_crop_ranges_are_one_line_config_errors(data, fragments):
    with pytest.raises(PipelineError) as err:
        resolve([("overrides", {"data": data})])
    message = str(err.value)
    assert "\n" not in message and all(f in message for f in fragments), message


def test_a_config_error_stops_a_script_in_one_line_before_any_artifact(tmp_path):
    make_competition(tmp_path, "c", n_train=6, n_test=2)
    proc = run_here(tmp_path, "01_folds.py", "c", "data.img_size=32", "data.cache_size=16", check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "data.cache_size=16 is below data.img_size=32" in errors[0]
    assert not (tmp_path / "folds").exists() and not (tmp_path / "cache").exists()
    good = {"img_size": 32, "crop_pct": 0.875, "cache_size": 1.15, "rrc": True, "rrc_scale": [1, 1]}
    assert cache_side(resolve([("ok", {"data": good})]).data) == 37  # round(36.8): just holds the 37 px resize
