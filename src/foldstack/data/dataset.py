"""Image decoding, the Dataset and DataLoader construction."""
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import PipelineError

cv2.setNumThreads(0)  # DataLoader workers already parallelise; OpenCV threads would oversubscribe the cores


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 HxWx3 from any common format (OpenCV first; PIL for GIF and what OpenCV cannot read)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is not None:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception:
        raise PipelineError(f"cannot decode image: {path}") from None


class ImageDataset(Dataset):
    def __init__(self, paths, targets: np.ndarray | None = None, transform=None):
        self.paths, self.targets, self.transform = list(paths), targets, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        image = self.transform(image=read_image(self.paths[i]))["image"]
        target = torch.from_numpy(self.targets[i]) if self.targets is not None else torch.zeros(0)
        return image, target


def _seed_worker(worker_id: int) -> None:
    # torch gives each worker a seed derived from the loader's generator; hand it to albumentations too,
    # so augmentations are a function of (seed, epoch) and a resumed run replays them exactly.
    info = torch.utils.data.get_worker_info()
    info.dataset.transform.set_random_seed(info.seed % 2**32)


class ExtraRowsSampler(Sampler):
    """One epoch = every one of the first n_real rows once plus a fresh random `fraction` of the n_extra rows
    after them (pseudo-labelled test rows), shuffled together. fraction < 1 down-weights the extra rows; the
    draws come from `generator` (the loader's), so an epoch's rows are a function of its seed."""

    def __init__(self, n_real: int, n_extra: int, fraction: float, generator: torch.Generator):
        self.n_real, self.n_extra, self.generator = n_real, n_extra, generator
        self.n_drawn = min(n_extra, max(1, round(fraction * n_extra))) if n_extra else 0

    def __len__(self):
        return self.n_real + self.n_drawn

    def __iter__(self):
        extra = self.n_real + torch.randperm(self.n_extra, generator=self.generator)[:self.n_drawn]
        rows = torch.cat([torch.arange(self.n_real), extra])
        return iter(rows[torch.randperm(len(rows), generator=self.generator)].tolist())


def make_loader(dataset: ImageDataset, batch_size: int, num_workers: int, shuffle: bool = False,
                drop_last: bool = False, generator: torch.Generator | None = None,
                sampler: Sampler | None = None) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, sampler=sampler,
                      num_workers=num_workers, generator=generator, worker_init_fn=_seed_worker,
                      pin_memory=torch.cuda.is_available(), persistent_workers=False)


def reseed_epoch(loader: DataLoader, seed: int) -> None:
    """Fix the shuffle order and augmentation stream of one epoch."""
    loader.generator.manual_seed(seed)
    if loader.num_workers == 0:
        loader.dataset.transform.set_random_seed(seed % 2**32)
