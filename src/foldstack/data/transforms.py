"""Albumentations pipelines built from the `data` config section."""
import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2

from ..config import Data


def build_transforms(cfg: Data, train: bool) -> A.Compose:
    ops = [A.Resize(cfg.img_size, cfg.img_size, interpolation=cv2.INTER_AREA)]
    if train:
        if cfg.hflip:
            ops.append(A.HorizontalFlip(p=0.5))
        if cfg.vflip:
            ops.append(A.VerticalFlip(p=0.5))
        if cfg.affine:
            ops.append(A.Affine(scale=(0.9, 1.1), translate_percent=(-0.06, 0.06), rotate=(-15, 15),
                                border_mode=cv2.BORDER_REFLECT_101, p=0.5))
    ops += [A.Normalize(mean=cfg.mean, std=cfg.std), ToTensorV2()]
    return A.Compose(ops, seed=0)
