"""Per-image augmentations outside albumentations: timm RandAugment / torchvision TrivialAugmentWide on the uint8
image and timm RandomErasing on the normalised tensor, each on its own seedable random streams.

timm's and torchvision's ops draw from the process-global RNGs (Python's `random`, numpy's, torch's). `PrivateRNG`
swaps a private copy of those three states in around each call and swaps the caller's back afterwards, so each
component is a pure function of (its seed, the images it has seen) and never perturbs, or is perturbed by, the
global streams (the training loop's shuffling, dropout, mixup...).
"""
import random
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


_RAND_KEYS = ("mstd", "mmax", "inc", "m", "n", "p")   # longest first: 'mstd0.5' is not 'm' + 'std0.5'
_RAND_TRANSFORM_SETS = ("weights", "3aw", "3a")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_rand_string(config_str: str) -> None:
    """timm silently skips sections it cannot parse ('rand-m9-foo'); refuse them instead."""
    parts = config_str.split("-")
    if parts[0] != "rand":
        raise ValueError("expected 'trivial' or a RandAugment string starting with 'rand' (e.g. 'rand-m9-mstd0.5-inc1')")
    for part in parts[1:]:
        if part.startswith("t") and part[1:] in _RAND_TRANSFORM_SETS:
            continue
        key = next((k for k in _RAND_KEYS if part.startswith(k)), None)
        if key is None or not _is_number(part[len(key):]):
            raise ValueError(f"unknown section {part!r} (expected m<int>, n<int>, p<float>, mstd<float>, "
                             f"mmax<int>, inc<0|1> or t<{'|'.join(_RAND_TRANSFORM_SETS)}>)")


class AutoAugment:
    """'rand-...' (timm RandAugment) or 'trivial' (torchvision TrivialAugmentWide) on an RGB uint8 HWC array."""

    def __init__(self, config_str: str, img_size: int, mean: list[float], seed: int = 0):
        from timm.data.auto_augment import rand_augment_transform
        from torchvision.transforms import InterpolationMode, TrivialAugmentWide

        img_mean = tuple(min(255, round(255 * m)) for m in mean)  # fill colour, as timm's create_transform
        try:
            if config_str == "trivial":
                self.op = TrivialAugmentWide(interpolation=InterpolationMode.BILINEAR, fill=list(img_mean))
            else:
                _check_rand_string(config_str)
                hparams = dict(translate_const=int(img_size * 0.45), img_mean=img_mean,
                               interpolation=Image.Resampling.BILINEAR)
                self.op = rand_augment_transform(config_str, hparams)
        except Exception as e:  # timm asserts / int() errors on a malformed string
            raise PipelineError(f"data.auto_augment: invalid value {config_str!r}: {e or type(e).__name__}") from None
        self.rng = PrivateRNG(seed)

    def set_random_seed(self, seed: int) -> None:
        self.rng.seed(seed)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        with self.rng.active():
            out = self.op(Image.fromarray(image))
        return np.array(out, dtype=np.uint8)


class Erasing:
    """timm RandomErasing (per-pixel normal noise, per-image probability) on a normalised CHW float tensor."""

    def __init__(self, probability: float, seed: int = 0):
        from timm.data.random_erasing import RandomErasing

        self.op = RandomErasing(probability=probability, mode="pixel", device="cpu")
        self.rng = PrivateRNG(seed)

    def set_random_seed(self, seed: int) -> None:
        self.rng.seed(seed)

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        with self.rng.active():
            return self.op(tensor)
