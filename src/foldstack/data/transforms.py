"""Image transforms built from the `data` config section, from the store's S x S images to img_size.

Training: Resize (or RandomResizedCrop with `data.rrc`), flips, the `augment` preset, `extra_augs` (albumentations,
uint8), the optional `auto_augment` (timm RandAugment / TrivialAugmentWide), ToTensorV2, then timm RandomErasing
on the normalised tensor. Evaluation: Resize, or with `data.crop_pct` < 1 timm's resize to round(img_size /
crop_pct) and centre crop; ToTensorV2. Every resize uses `data.interpolation`.

Called as `t(image=rgb_uint8_hwc)["image"]` -> CHW tensor: uint8, normalised on the device by data.device.to_device
(a quarter of the bytes to copy), or float when erasing needed it here. `t.set_random_seed(seed)` makes the
pipeline a pure function of (seed, the images it sees).
"""
import inspect

import albumentations as A
import torch
import cv2
import numpy as np
from albumentations.pytorch import ToTensorV2

from ..config.training import AUGMENT_PRESETS, Data, eval_side
from ..errors import PipelineError, error_lines
from .augment import AutoAugment, Erasing, derive_seed
from .device import Normalize
from .images import CV2_INTERPOLATIONS

REFLECT = cv2.BORDER_REFLECT_101


def _light_affine() -> A.Affine:
    return A.Affine(scale=(0.9, 1.1), translate_percent=(-0.06, 0.06), rotate=(-15, 15), border_mode=REFLECT, p=0.5)


def _medium_ops(rgb: bool = True) -> list:
    # Hue and saturation exist for RGB only: other channel counts (and float sources) keep the rest.
    return [
        A.Affine(scale=(0.8, 1.2), translate_percent=(-0.1, 0.1), rotate=(-30, 30), shear=(-8, 8),
                 border_mode=REFLECT, p=0.7),
        A.RandomBrightnessContrast(brightness_limit=(-0.2, 0.2), contrast_limit=(-0.2, 0.2), p=0.5),
    ] + ([A.HueSaturationValue(hue_shift_limit=(-10, 10), sat_shift_limit=(-20, 20), val_shift_limit=(-10, 10),
                               p=0.3)] if rgb else [])


def _heavy_ops(rgb: bool = True) -> list:
    # sized for 32-224 px images: small kernels, holes as fractions of the side
    return _medium_ops(rgb) + [
        A.OneOf([
            A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.3, 1.2)),
            A.MotionBlur(blur_limit=(3, 5)),
            A.GaussNoise(std_range=(0.02, 0.08)),
        ], p=0.3),
        A.CoarseDropout(num_holes_range=(1, 4), hole_height_range=(0.05, 0.2), hole_width_range=(0.05, 0.2),
                        fill=0, p=0.5),
    ]


def preset_ops(name: str, rgb: bool = True) -> list:
    """The albumentations ops of one `data.augment` preset (after Resize and the flips); rgb=False: for inputs
    that are not RGB uint8 (no hue/saturation)."""
    if name not in AUGMENT_PRESETS:
        raise PipelineError(f"data.augment: unknown preset {name!r} (expected one of {', '.join(AUGMENT_PRESETS)})")
    return {"none": lambda _: [], "light": lambda _: [_light_affine()], "medium": _medium_ops, "heavy": _heavy_ops}[name](rgb)


def _error_text(err: Exception) -> str:
    """Albumentations validates with pydantic: every complaint on one line, without pydantic's help links."""
    return "; ".join(ln for ln in error_lines(err) if "errors.pydantic.dev" not in ln) or type(err).__name__


def build_extra_aug(entry, where: str):
    """One `data.extra_augs` entry {name: <albumentations class>, **kwargs} -> the transform.

    Compositions work too: {name: OneOf, p: 0.5, transforms: [{name: Blur}, {name: MedianBlur}]}."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise PipelineError(f"{where}: expected a mapping with a 'name' key, got {entry!r}")
    kwargs = dict(entry)
    name = kwargs.pop("name")
    cls = getattr(A, name, None)
    if not (isinstance(cls, type) and issubclass(cls, (A.BasicTransform, A.BaseCompose))):
        raise PipelineError(f"{where}: unknown albumentations transform {name!r}")
    if issubclass(cls, A.BaseCompose):
        children = kwargs.get("transforms")
        if not isinstance(children, list) or not children:
            raise PipelineError(f"{where}: {name} needs a non-empty 'transforms' list")
        kwargs["transforms"] = [build_extra_aug(c, f"{where}.transforms[{i}]") for i, c in enumerate(children)]
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params) - {"self"})
        if unknown:  # albumentations only warns about these
            raise PipelineError(f"{where}: {name} has no argument(s) {', '.join(unknown)} "
                                f"(it takes {', '.join(p for p in params if p != 'self')})")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:  # pydantic's validation (a ValueError), a required argument missing
        raise PipelineError(f"{where}: bad arguments for {name}: {_error_text(e)}") from None


class TrainTransform:
    """The training pipeline; see the module docstring for its order."""

    def __init__(self, augment: A.Compose, auto_augment: AutoAugment | None, finish: A.Compose,
                 erasing: Erasing | None, img_size: int, seed: int = 0, normalize: "FloatNormalize | None" = None):
        self.augment, self.auto_augment, self.finish = augment, auto_augment, finish
        self.erasing, self.img_size, self.normalize = erasing, img_size, normalize
        self.set_random_seed(seed)

    def set_random_seed(self, seed: int) -> None:
        # A.Compose seeds every child with the same seed, so two ops drawing alike (HorizontalFlip and VerticalFlip:
        # one draw per call) would fire in lockstep forever: every op, and every component outside albumentations,
        # gets its own seed derived from this one.
        self.augment.set_random_seed(seed)
        for i, op in enumerate(self.augment.transforms):
            op.set_random_seed(derive_seed(seed, 10, i))
        if self.auto_augment is not None:
            self.auto_augment.set_random_seed(derive_seed(seed, 20))
        if self.erasing is not None:
            self.erasing.set_random_seed(derive_seed(seed, 30))

    def __call__(self, *, image: np.ndarray, **_) -> dict:
        image = self.augment(image=image)["image"]
        if image.shape[:2] != (self.img_size, self.img_size):
            raise PipelineError(f"data.extra_augs: the augmented image is {image.shape[1]}x{image.shape[0]}, "
                                f"expected data.img_size={self.img_size}; drop size-changing transforms")
        if self.auto_augment is not None:
            image = self.auto_augment(np.ascontiguousarray(image))
        if self.normalize is not None:  # float sources: normalised here, before erasing
            image = self.normalize(image)
        tensor = self.finish(image=image)["image"]
        if self.erasing is not None:
            tensor = self.erasing(tensor)  # uint8: normalises, then erases
        return {"image": tensor}

    def __repr__(self):
        return (f"TrainTransform(augment={self.augment!r}, auto_augment={self.auto_augment and self.auto_augment.op!r}, "
                f"erasing={self.erasing and self.erasing.op!r})")


def _resize(cfg: Data, side: int) -> A.Resize:
    """A resize of the store's S x S image to side x side with data.interpolation, as the store resized the file
    (data.images.resize_square): the identity when side is S."""
    return A.Resize(side, side, interpolation=CV2_INTERPOLATIONS[cfg.interpolation])


class FloatNormalize:
    """Float sources' pixels (data/sources.py) normalised with data.mean/std in their own units, as one numpy
    expression on the H x W x C array (a torch call per image costs more than the rest of the read); uint8
    batches are normalised on the device instead (data.device.to_device)."""

    def __init__(self, cfg: Data):
        self.mean = np.asarray(cfg.mean, np.float32)
        self.inv_std = np.asarray([1 / s for s in cfg.std], np.float32)
        self.width, self.row_shift, self.row_scale = None, None, None

    def __call__(self, image: np.ndarray) -> np.ndarray:
        # As rows of W*C values against a tiled row: numpy broadcasts a C-long last axis 4x slower (measured).
        height, width, channels = image.shape
        if width != self.width:
            self.width, self.row_shift, self.row_scale = width, np.tile(self.mean, width), np.tile(self.inv_std, width)
        rows = np.ascontiguousarray(image).reshape(height, width * channels)
        return ((rows - self.row_shift) * self.row_scale).reshape(height, width, channels)


class EvalTransform:
    """Resize (and centre crop) to a tensor; float sources normalised here (uint8 batches are, on the device)."""

    def __init__(self, ops: A.Compose, normalize: FloatNormalize | None):
        self.ops, self.normalize, self.to_tensor = ops, normalize, ToTensorV2()

    def set_random_seed(self, seed: int) -> None:
        self.ops.set_random_seed(seed)

    def __call__(self, *, image: np.ndarray, **_) -> dict:
        image = self.ops(image=image)["image"]  # a resize and crop: normalising after them reads fewer pixels
        return {"image": image if self.normalize is None else self.to_tensor(image=self.normalize(image))["image"]}


def build_transforms(cfg: Data, train: bool, float_pixels: bool = False):
    """Training or evaluation transform: `t(image=uint8_or_float_hwc)["image"]`, `t.set_random_seed(seed)`.
    float_pixels: the source gives float32 (data/sources.py), normalised in the transform, in its own units."""
    normalize = FloatNormalize(cfg) if float_pixels else None
    if not train:
        side = eval_side(cfg)
        crop = [A.CenterCrop(cfg.img_size, cfg.img_size)] if side != cfg.img_size else []
        return EvalTransform(A.Compose([_resize(cfg, side), *crop] + ([] if float_pixels else [ToTensorV2()]),
                                       seed=0), normalize)
    rgb = len(cfg.mean) == 3 and not float_pixels
    if cfg.auto_augment and not rgb:
        raise PipelineError(f"data.auto_augment={cfg.auto_augment!r} needs RGB 8-bit images; this input has "
                            f"{len(cfg.mean)} channel(s){' of floats' if float_pixels else ''}: set it to null")
    ops = [A.RandomResizedCrop(size=(cfg.img_size, cfg.img_size), scale=tuple(cfg.rrc_scale),
                               ratio=tuple(cfg.rrc_ratio), interpolation=CV2_INTERPOLATIONS[cfg.interpolation])
           if cfg.rrc else _resize(cfg, cfg.img_size)]
    if cfg.hflip:
        ops.append(A.HorizontalFlip(p=0.5))
    if cfg.vflip:
        ops.append(A.VerticalFlip(p=0.5))
    ops += preset_ops(cfg.augment, rgb)
    ops += [build_extra_aug(e, f"data.extra_augs[{i}]") for i, e in enumerate(cfg.extra_augs)]
    auto = AutoAugment(cfg.auto_augment, cfg.img_size, cfg.mean) if cfg.auto_augment else None
    erasing = (Erasing(cfg.random_erasing, torch.nn.Identity() if float_pixels else Normalize.of(cfg))
               if cfg.random_erasing > 0 else None)
    finish = A.Compose([ToTensorV2()], seed=0)
    return TrainTransform(A.Compose(ops, seed=0), auto, finish, erasing, cfg.img_size, normalize=normalize)
