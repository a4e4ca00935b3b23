import random

import albumentations as A
import cv2
import numpy as np
import pytest
import torch
from albumentations.pytorch import ToTensorV2

from foldstack.config.training import Data, Mixup
from foldstack.data.augment import derive_seed
from foldstack.data.mixup import TargetMixup, create_mixup
from foldstack.data.multiscale import multiscale_size, resize_batch
from foldstack.data.transforms import build_transforms
from foldstack.errors import PipelineError

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def images(n=6, shape=(20, 24, 3), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, np.uint8) for _ in range(n)]


def run(transform, imgs, seed):
    transform.set_random_seed(seed)
    return [transform(image=img)["image"] for img in imgs]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


# ---- transforms -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 7, 12345])
def test_light_preset_is_resize_flip_and_affine_each_on_its_own_seed(seed):
    """The default config: Resize, HorizontalFlip and the light Affine, each op on derive_seed(seed, 10, its
    position), not on A.Compose's one seed for all (which fired the flip and the Affine together). A pipeline
    never seeded is on seed 0."""
    ops = [A.Resize(16, 16, interpolation=cv2.INTER_AREA), A.HorizontalFlip(p=0.5),
           A.Affine(scale=(0.9, 1.1), translate_percent=(-0.06, 0.06), rotate=(-15, 15),
                    border_mode=cv2.BORDER_REFLECT_101, p=0.5)]
    reference = A.Compose([*ops, ToTensorV2()], seed=seed)  # normalisation happens on the device (below)
    for i, op in enumerate(ops):
        op.set_random_seed(derive_seed(seed, 10, i))
    imgs = images(10)
    ref = [reference(image=img)["image"] for img in imgs]
    t = build_transforms(Data(img_size=16), train=True)
    assert same(run(t, imgs, seed), ref)
    if seed == 0:
        fresh = build_transforms(Data(img_size=16), train=True)
        assert same([fresh(image=img)["image"] for img in imgs], ref)
    plain = [build_transforms(Data(img_size=16), train=False)(image=img)["image"] for img in imgs]
    assert not same(ref, plain)  # it did augment


def test_eval_transform_is_resize_then_device_normalisation():
    from foldstack.data.device import to_device

    img = images(1)[0]
    cfg = Data(img_size=12, augment="heavy", auto_augment="trivial", random_erasing=1.0, vflip=True,
               extra_augs=[{"name": "GaussNoise", "p": 1.0}])
    t = build_transforms(cfg, train=False)
    a, b = t(image=img)["image"], t(image=img)["image"]
    assert torch.equal(a, b) and a.dtype == torch.uint8 and tuple(a.shape) == (3, 12, 12)  # a quarter of the bytes
    x = to_device(a[None], torch.device("cpu"), cfg)[0]
    expected = (cv2.resize(img, (12, 12), interpolation=cv2.INTER_AREA) / 255.0 - MEAN) / STD
    assert x.dtype == torch.float32 and np.allclose(x.numpy(), expected.transpose(2, 0, 1), atol=1e-5)


def test_device_normalisation_equals_albumentations_normalize():
    from foldstack.data.device import to_device

    imgs = images(8, (10, 10, 3))
    ref = torch.stack([A.Compose([A.Normalize(mean=MEAN, std=STD), ToTensorV2()])(image=i)["image"] for i in imgs])
    ours = to_device(torch.stack([ToTensorV2()(image=i)["image"] for i in imgs]), torch.device("cpu"), Data())
    assert (ours - ref).abs().max() < 1e-6
    last = to_device(torch.stack([ToTensorV2()(image=i)["image"] for i in imgs]), torch.device("cpu"), Data(),
                     channels_last=True)
    assert torch.equal(last, ours) and last.is_contiguous(memory_format=torch.channels_last)
    floats = torch.randn(2, 3, 4, 4)  # already normalised (random erasing did it in the worker): left alone
    assert torch.equal(to_device(floats, torch.device("cpu"), Data()), floats)


def test_none_preset_without_flips_equals_eval():
    imgs = images(4)
    train = build_transforms(Data(img_size=16, augment="none", hflip=False, vflip=False), train=True)
    evaluate = build_transforms(Data(img_size=16), train=False)
    assert same(run(train, imgs, 3), [evaluate(image=i)["image"] for i in imgs])


OPTIONS = {
    "none": dict(augment="none"),
    "light": dict(augment="light", hflip=False),
    "medium": dict(augment="medium", hflip=False),
    "heavy": dict(augment="heavy", hflip=False),
    "flips": dict(augment="none", vflip=True),
    "extra_augs": dict(augment="none", hflip=False, extra_augs=[{"name": "RandomBrightnessContrast", "p": 1.0}]),
    "extra_oneof": dict(augment="none", hflip=False, extra_augs=[
        {"name": "OneOf", "p": 1.0, "transforms": [{"name": "Blur", "blur_limit": 3}, {"name": "ToGray"}]}]),
    "randaugment": dict(augment="none", hflip=False, auto_augment="rand-m9-mstd0.5-inc1"),
    "randaugment_n3": dict(augment="none", hflip=False, auto_augment="rand-m7-n3-p0.8-mmax10-tweights"),
    "trivial": dict(augment="none", hflip=False, auto_augment="trivial"),
    "erasing": dict(augment="none", hflip=False, random_erasing=0.7),
    "everything": dict(augment="heavy", vflip=True, auto_augment="rand-m9-mstd0.5", random_erasing=0.5,
                       extra_augs=[{"name": "CLAHE", "p": 0.5}]),
}


@pytest.mark.parametrize("name", list(OPTIONS))
def test_every_preset_and_option_is_reproducible_from_its_seed(name):
    cfg = Data(img_size=16, **OPTIONS[name])
    imgs = images(6)
    seeds = [0, 1, 2] if name != "none" else [0, 5, 9]
    # two separately built pipelines, noisy global RNGs in between: only set_random_seed matters
    t1, t2 = build_transforms(cfg, train=True), build_transforms(cfg, train=True)
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    a = run(t1, imgs, seeds[0])
    random.seed(2), np.random.seed(2), torch.manual_seed(2)
    b = run(t2, imgs, seeds[0])
    assert same(a, b)
    assert same(a, run(t1, imgs, seeds[0]))  # reseeding the same object replays it
    assert all(not same(a, run(t1, imgs, s)) for s in seeds[1:])
    # uint8 (normalised on the device) unless random erasing, which works on the normalised tensor, needed floats
    dtype = torch.float32 if cfg.random_erasing else torch.uint8
    assert all(tuple(x.shape) == (3, 16, 16) and x.dtype == dtype for x in a)


def test_pipeline_leaves_the_global_rngs_alone():
    t = build_transforms(Data(img_size=16, augment="heavy", auto_augment="trivial", random_erasing=1.0,
                              extra_augs=[{"name": "GaussNoise", "p": 1.0}]), train=True)
    t2 = build_transforms(Data(img_size=16, auto_augment="rand-m9-mstd0.5"), train=True)
    before = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    run(t, images(4), 3), run(t2, images(4), 3)
    assert random.getstate() == before[0]
    assert np.array_equal(np.random.get_state()[1], before[1]) and torch.equal(torch.get_rng_state(), before[2])


def test_hflip_and_vflip_are_not_in_lockstep():
    """A.Compose seeds every op alike: two one-draw ops would always fire together. Ours draw independently."""
    img = np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)
    t = build_transforms(Data(img_size=16, augment="none", hflip=True, vflip=True), train=True)
    base = build_transforms(Data(img_size=16), train=False)(image=img)["image"]
    seen = set()
    for out in run(t, [img] * 24, 11):
        h = torch.equal(out, base.flip(2)) or torch.equal(out, base.flip(1, 2))
        v = torch.equal(out, base.flip(1)) or torch.equal(out, base.flip(1, 2))
        seen.add((h, v))
    assert seen == {(False, False), (True, False), (False, True), (True, True)}


def test_random_erasing_only_adds_a_box():
    imgs = images(5, shape=(32, 32, 3))
    plain = run(build_transforms(Data(img_size=32, augment="medium"), train=True), imgs, 4)
    zero = run(build_transforms(Data(img_size=32, augment="medium", random_erasing=0.0), train=True), imgs, 4)
    erased = run(build_transforms(Data(img_size=32, augment="medium", random_erasing=1.0), train=True), imgs, 4)
    assert same(zero, plain)
    for p, e in zip(plain, erased):
        diff = (p != e).any(0)
        assert diff.any()  # p=1.0 erases every image
        rows, cols = diff.any(1).nonzero().flatten(), diff.any(0).nonzero().flatten()
        box = torch.zeros_like(diff)
        box[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
        assert torch.equal(diff, box)  # one rectangle, the rest of the image is the un-erased pipeline's


@pytest.mark.parametrize("entry, message", [
    ({"name": "Blurr"}, r"data\.extra_augs\[1\]: unknown albumentations transform 'Blurr'"),
    ({"name": "Compose", "p": 1}, r"data\.extra_augs\[1\]: Compose needs a non-empty 'transforms' list"),
    ({"name": "Blur", "blur_limt": 3}, r"data\.extra_augs\[1\]: Blur has no argument\(s\) blur_limt"),
    ({"name": "GaussNoise", "std_range": [2, 3]}, r"data\.extra_augs\[1\]: bad arguments for GaussNoise"),
    ({"p": 0.5}, r"data\.extra_augs\[1\]: expected a mapping with a 'name' key"),
    ({"name": "OneOf", "transforms": [{"name": "Nope"}]},
     r"data\.extra_augs\[1\]\.transforms\[0\]: unknown albumentations transform 'Nope'"),
])
def test_bad_extra_augs_name_the_entry(entry, message):
    with pytest.raises(PipelineError, match=message):
        build_transforms(Data(extra_augs=[{"name": "CLAHE", "p": 0.3}, entry]), train=True)


def test_extra_augs_that_change_the_size_are_refused():
    t = build_transforms(Data(img_size=16, extra_augs=[{"name": "Resize", "height": 8, "width": 8}]), train=True)
    with pytest.raises(PipelineError, match="data.extra_augs: .*expected data.img_size=16"):
        t(image=images(1)[0])


@pytest.mark.parametrize("value", ["rand-m9-foo", "random-m9", "autoaug", "rand-mx", "rand-m9.5", "rand-tnope", ""])
def test_bad_auto_augment_names_the_key(value):
    if value == "":  # empty means off
        assert build_transforms(Data(auto_augment=value), train=True).auto_augment is None
        return
    with pytest.raises(PipelineError, match=r"data\.auto_augment: invalid value"):
        build_transforms(Data(auto_augment=value), train=True)


# ---- mixup ------------------------------------------------------------------------------------------------------

def batch(n=6, k=4, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=g)
    t = torch.nn.functional.one_hot(torch.randint(0, k, (n,), generator=g), k).float()
    return x, t


def test_no_mixup_when_both_alphas_are_zero():
    assert create_mixup(Mixup(), 4) is None
    assert isinstance(create_mixup(Mixup(cutmix_alpha=1.0), 4), TargetMixup)


def test_batch_mixup_mixes_x_and_float_targets_with_one_lam(monkeypatch):
    m = create_mixup(Mixup(mixup_alpha=0.4), 4)
    monkeypatch.setattr(m, "_params_per_batch", lambda: (0.7, False))
    x, t = batch()
    xm, tm = m(x.clone(), t)
    assert torch.allclose(xm, 0.7 * x + 0.3 * x.flip(0), atol=1e-6)
    assert torch.allclose(tm, 0.7 * t + 0.3 * t.flip(0))
    assert torch.allclose(tm.sum(1), torch.ones(6)) and not torch.equal(tm, t)


def test_batch_mixup_from_seeded_numpy_is_reproducible_and_consistent():
    m = create_mixup(Mixup(mixup_alpha=0.4, prob=1.0), 4)
    x, _ = batch()
    t = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3, 0, 1]), 4).float()  # every row differs from its partner
    np.random.seed(0)
    xm, tm = m(x.clone(), t)
    np.random.seed(0)
    xm2, tm2 = m(x.clone(), t)
    assert torch.equal(xm, xm2) and torch.equal(tm, tm2)
    lam = tm[0, 0]
    assert 0 < lam < 1
    assert torch.allclose(xm, lam * x + (1 - lam) * x.flip(0), atol=1e-5)
    assert torch.allclose(tm, lam * t + (1 - lam) * t.flip(0)) and torch.allclose(tm.sum(1), torch.ones(6))


@pytest.mark.parametrize("mode", ["elem", "pair"])
def test_per_sample_lam_is_a_column(monkeypatch, mode):
    m = create_mixup(Mixup(mixup_alpha=1.0, mode=mode), 3)
    n = 6
    lams = np.array([0.9, 0.6, 0.3, 0.8, 0.5, 0.7], np.float32)[: n if mode == "elem" else n // 2]
    monkeypatch.setattr(m, "_params_per_elem", lambda size: (lams[:size].copy(), np.zeros(size, bool)))
    x, t = batch(n=n, k=3)
    t[:, 0] = torch.linspace(0, 1, n)  # soft / multi-hot targets mix the same way
    xm, tm = m(x.clone(), t)
    col = torch.from_numpy(lams if mode == "elem" else np.concatenate([lams, lams[::-1]])).unsqueeze(1)
    assert torch.allclose(xm, col[:, :, None, None] * x + (1 - col[:, :, None, None]) * x.flip(0), atol=1e-6)
    assert torch.allclose(tm, col * t + (1 - col) * t.flip(0), atol=1e-6)


def test_binary_one_column_and_1d_targets():
    m = create_mixup(Mixup(mixup_alpha=1.0, mode="elem"), 1)
    x, _ = batch(n=4)
    t = torch.tensor([[0.0], [1.0], [0.0], [0.0]])
    np.random.seed(3)
    _, t2 = m(x.clone(), t)
    np.random.seed(3)
    _, t1 = m(x.clone(), t.flatten())
    assert t2.shape == (4, 1) and t1.shape == (4,) and torch.allclose(t2.flatten(), t1)
    assert ((t2 >= 0) & (t2 <= 1)).all() and not torch.equal(t2, t)


def test_cutmix_uses_the_area_corrected_lam():
    m = create_mixup(Mixup(cutmix_alpha=1.0), 4)
    x, t = batch(size=16)
    np.random.seed(5)
    xm, tm = m(x.clone(), t)
    diff = (xm != x).any(0).any(0)
    rows, cols = diff.any(1).nonzero().flatten(), diff.any(0).nonzero().flatten()
    assert len(rows) and len(cols)
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    box = torch.zeros_like(diff)
    box[y0:y1, x0:x1] = True
    assert torch.equal(diff, box)  # outside the box: the original rows
    assert torch.equal(xm[..., y0:y1, x0:x1], x.flip(0)[..., y0:y1, x0:x1])  # inside: the partner's pixels
    lam = 1 - float((y1 - y0) * (x1 - x0)) / (16 * 16)
    assert torch.allclose(tm, lam * t + (1 - lam) * t.flip(0), atol=1e-6)


def test_off_epoch_state_dict_and_odd_batches():
    m = create_mixup(Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, off_epoch=3), 4)
    x, t = batch()
    m.set_epoch(2)
    assert m.mixup_enabled and not torch.equal(m(x.clone(), t)[1], t)
    m.set_epoch(3)
    xm, tm = m(x.clone(), t)
    assert torch.equal(xm, x) and torch.equal(tm, t)
    state = m.state_dict()
    assert state == {"mixup_enabled": False}
    fresh = create_mixup(Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, off_epoch=3), 4)
    assert fresh.mixup_enabled
    fresh.load_state_dict(state)
    assert not fresh.mixup_enabled
    fresh.set_epoch(0)
    xo, to = fresh(x[:5].clone(), t[:5])  # odd batch: unmixed, no assertion error
    assert torch.equal(xo, x[:5]) and torch.equal(to, t[:5])


# ---- multiscale -------------------------------------------------------------------------------------------------

def test_multiscale_size_is_deterministic_in_the_list_and_varied():
    sizes = [32, 48, 64, 96]
    before = np.random.get_state()[1].copy(), torch.get_rng_state().clone(), random.getstate()
    seq = [multiscale_size(sizes, 42, 1, s) for s in range(60)]
    assert seq == [multiscale_size(sizes, 42, 1, s) for s in range(60)]
    assert set(seq) == set(sizes)
    assert seq != [multiscale_size(sizes, 42, 2, s) for s in range(60)]
    assert seq != [multiscale_size(sizes, 43, 1, s) for s in range(60)]
    assert np.array_equal(np.random.get_state()[1], before[0]) and torch.equal(torch.get_rng_state(), before[1])
    assert random.getstate() == before[2]
    assert multiscale_size([40], 0, 0, 0) == 40


def test_resize_batch():
    x = torch.randn(2, 3, 16, 16)
    assert resize_batch(x, 16) is x
    y = resize_batch(x, 24)
    assert tuple(y.shape) == (2, 3, 24, 24)
    assert torch.allclose(resize_batch(torch.ones(1, 3, 8, 8), 12), torch.ones(1, 3, 12, 12))
