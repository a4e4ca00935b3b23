"""Per-image augmentations outside albumentations: timm RandAugment / torchvision TrivialAugmentWide on the uint8
image and timm RandomErasing on the normalised tensor, each on its own seedable random streams.

timm's and torchvision's ops draw from the process-global RNGs (Python's, numpy's, torch's): `PrivateRNG` swaps
private states in around each call, so each component is a pure function of (its seed, the images it has seen)
and never perturbs, or is perturbed by, the global streams (shuffling, dropout, mixup...)."""
import random
import re
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image

from ..errors import PipelineError


def derive_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed for one component, independent of the other components' for the same `seed`."""
    return int(np.random.SeedSequence([seed % 2**64, *keys]).generate_state(1)[0])


class PrivateRNG:
    """Private states of Python's, numpy's and torch's (CPU) global generators, swapped in by `active()`.

    Not thread-safe (the swap is process-global); DataLoader workers are processes, which is fine."""

    def __init__(self, seed: int = 0):
        self.seed(seed)

    def seed(self, seed: int) -> None:
        self._py = random.Random(derive_seed(seed, 0)).getstate()
        self._np = np.random.RandomState(derive_seed(seed, 1)).get_state()
        self._torch = torch.Generator().manual_seed(derive_seed(seed, 2)).get_state()

    @contextmanager
    def active(self):
        saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
        random.setstate(self._py)
        np.random.set_state(self._np)
        torch.set_rng_state(self._torch)
        try:
            yield
        finally:
            self._py, self._np, self._torch = random.getstate(), np.random.get_state(), torch.get_rng_state()
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])


_RAND_NUMBERS = {"m": int, "n": int, "mmax": int, "inc": int, "mstd": float, "p": float}  # timm's parse of each
_RAND_TRANSFORM_SETS = ("weights", "3aw", "3a")


def _parses(kind, text: str) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


def _check_rand_string(config_str: str) -> None:
    """timm reads 'rand-m9-mstd0.5-inc1' section by section (the key is what precedes the first digit), skips one
    it cannot parse ('rand-m9-foo') and raises on a bad number ('rand-m9.5'): refuse both here, by name."""
    parts = config_str.split("-")
    if parts[0] != "rand":
        raise _invalid(config_str, "expected 'trivial' or a RandAugment string starting with 'rand' "
                                   "(e.g. 'rand-m9-mstd0.5-inc1')")
    for part in parts[1:]:
        if part.startswith("t") and part[1:] in _RAND_TRANSFORM_SETS:
            continue
        key, value = re.match(r"(\D*)(.*)", part).groups()
        if key not in _RAND_NUMBERS or not _parses(_RAND_NUMBERS[key], value):
            raise _invalid(config_str, f"unknown section {part!r} (expected m<int>, n<int>, p<float>, mstd<float>, "
                                       f"mmax<int>, inc<0|1> or t<{'|'.join(_RAND_TRANSFORM_SETS)}>)")


def _invalid(config_str: str, why: str) -> PipelineError:
    return PipelineError(f"data.auto_augment: invalid value {config_str!r}: {why}")


class AutoAugment:
    """'rand-...' (timm RandAugment) or 'trivial' (torchvision TrivialAugmentWide) on an RGB uint8 HWC array."""

    def __init__(self, config_str: str, img_size: int, mean: list[float], seed: int = 0):
        from timm.data.auto_augment import rand_augment_transform
        from torchvision.transforms import InterpolationMode, TrivialAugmentWide

        img_mean = tuple(min(255, round(255 * m)) for m in mean)  # fill colour, as timm's create_transform
        if config_str == "trivial":
            self.op = TrivialAugmentWide(interpolation=InterpolationMode.BILINEAR, fill=list(img_mean))
        else:
            _check_rand_string(config_str)  # checked first: timm would skip or assert
            hparams = dict(translate_const=int(img_size * 0.45), img_mean=img_mean,
                           interpolation=Image.Resampling.BILINEAR)
            self.op = rand_augment_transform(config_str, hparams)
        self.rng = PrivateRNG(seed)

    def set_random_seed(self, seed: int) -> None:
        self.rng.seed(seed)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        with self.rng.active():
            out = self.op(Image.fromarray(image))
        return np.array(out, dtype=np.uint8)


class Erasing:
    """timm RandomErasing (per-pixel normal noise, per-image probability): a uint8 CHW tensor in, normalised by
    `normalize` (data.device.Normalize: the noise is drawn in normalised units) and erased, float out."""

    def __init__(self, probability: float, normalize, seed: int = 0):
        from timm.data.random_erasing import RandomErasing

        self.op = RandomErasing(probability=probability, mode="pixel", device="cpu")
        self.normalize, self.rng = normalize, PrivateRNG(seed)

    def set_random_seed(self, seed: int) -> None:
        self.rng.seed(seed)

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        with self.rng.active():
            return self.op(self.normalize(tensor))
