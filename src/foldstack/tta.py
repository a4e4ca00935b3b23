"""Test-time augmentation on a batched, normalised image tensor (B, C, S, S) already on the device. A View maps the
batch to another batch; views of equal output size go through the model together, in as few forward calls as
runtime.infer_batch allows (forward_views)."""
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor

from .config.levels import TTA_MERGES, TTA_VIEWS
from .models.meta_head import split_batch


@dataclass(frozen=True)
class View:
    name: str
    apply: Callable[[Tensor], Tensor]
    undo: Optional[Callable[[Tensor], Tensor]] = None  # exact inverse (dihedral views); None for crops/scales
    size: Optional[int] = None                           # output side when it differs from the input's


def _rot(k: int) -> Callable[[Tensor], Tensor]:
    return lambda x: torch.rot90(x, k, (2, 3))


# The dihedral group of the square; each element is its own inverse except the two quarter turns. Only these
# are exactly invertible, so only they get an `undo` (e.g. to map a predicted mask back).
_DIHEDRAL = {
    "identity": (lambda x: x, lambda x: x),
    "rot90": (_rot(1), _rot(-1)),
    "rot180": (_rot(2), _rot(2)),
    "rot270": (_rot(-1), _rot(1)),
    "hflip": (TF.horizontal_flip, TF.horizontal_flip),
    "vflip": (TF.vertical_flip, TF.vertical_flip),
    "transpose": (lambda x: x.transpose(2, 3), lambda x: x.transpose(2, 3)),
    "antitranspose": (lambda x: x.flip(2, 3).transpose(2, 3), lambda x: x.flip(2, 3).transpose(2, 3)),
}
_CORNERS = ("tl", "tr", "bl", "br", "c")  # the order of torchvision's five_crop


def _crop(i: int, big: int, size: int, flip: bool) -> View:
    def apply(x: Tensor) -> Tensor:
        # five_crop slices views of the upscaled batch; crops at the image border see its full content
        crop = TF.five_crop(TF.resize(x, [big, big], antialias=True), [size, size])[i]
        return TF.horizontal_flip(crop) if flip else crop
    return View(f"crop_{_CORNERS[i]}" + ("_hflip" if flip else ""), apply)


def _scale(s: int) -> View:
    return View(f"scale{s}", lambda x: TF.resize(x, [s, s], antialias=True), size=s)


def build_views(tta: list[str], scales: list[int], crop_fraction: float, size: int) -> list[View]:
    """Identity first, then the views of `tta` in order, de-duplicated by name, then one per extra scale."""
    views: dict[str, View] = {}  # by name: a view asked for twice (hflip and d4) runs once
    candidates = [View("identity", *_DIHEDRAL["identity"])]
    for t in tta:
        if t not in TTA_VIEWS:
            raise ValueError(f"predict.tta: unknown view {t!r} (choose from {', '.join(TTA_VIEWS)})")
        if t in ("hflip", "vflip"):
            candidates.append(View(t, *_DIHEDRAL[t]))
        elif t == "d4":
            candidates += [View(n, *fns) for n, fns in _DIHEDRAL.items()]
        else:
            big = round(size / crop_fraction)
            if big == size:  # also when crop_fraction < 1 rounds away at this size
                raise ValueError(f"predict.tta {t}: crop_fraction {crop_fraction} at size {size} makes every "
                                 f"crop the whole image; use a crop_fraction < 1")
            flips = (False, True) if t == "ten_crop" else (False,)
            candidates += [_crop(i, big, size, flip) for flip in flips for i in range(5)]
    candidates += [_scale(s) for s in scales if s != size]
    for v in candidates:
        views.setdefault(v.name, v)
    return list(views.values())


def merge_views(probs: Tensor, how: str, task: str) -> Tensor:
    """(V, B, K) probabilities -> (B, K). Multiclass geometric/max rows are renormalised to sum to 1."""
    p = probs.float()
    if how == "mean":
        return p.mean(0)
    if how == "geometric":
        out = p.clamp_min(1e-7).log().mean(0).exp()
    elif how == "max":
        out = p.amax(0)
    else:
        raise ValueError(f"predict.tta_merge: unknown merge {how!r} (choose from {', '.join(TTA_MERGES)})")
    return out / out.sum(1, keepdim=True) if task == "multiclass" else out


def forward_views(predict: Callable[[Tensor], Tensor], x, views: list[View], max_batch: int) -> Tensor:
    """(V, B, K) probabilities of `predict` on every view of x, in the order of `views`. Views of the same output size
    are concatenated along the batch dim and chunked into calls of at most max_batch images: fewer, fuller calls."""
    images, meta = split_batch(x)  # model.meta_head: every view of an image keeps the row's meta as it is
    n = images.shape[0]
    groups: dict[Optional[int], list[int]] = {}
    for i, v in enumerate(views):
        groups.setdefault(v.size, []).append(i)
    out: list[Optional[Tensor]] = [None] * len(views)
    for idx in groups.values():
        chunks = torch.cat([views[i].apply(images) for i in idx]).split(max_batch)
        if meta is not None:
            chunks = list(zip(chunks, meta.repeat(len(idx), 1).split(max_batch)))
        probs = torch.cat([predict(chunk) for chunk in chunks])
        for j, i in enumerate(idx):
            out[i] = probs[j * n:(j + 1) * n]
    return torch.stack(out)
