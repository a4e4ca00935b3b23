"""The Dataset over an ImageStore and the DataLoader construction.

Training batches carry their own augmentation seed in their indices (SeededBatches yields (row, seed) pairs): a
batch is augmented the same whichever worker process handles it and however many there are, so
`runtime.num_workers` (and `auto`, which depends on the machine) never changes results, and workers can persist
across epochs."""

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from .images import ImageStore, decode_in_this_thread


def seeded(indices, seed: int) -> list[tuple[int, int]]:
    """A training batch: each dataset index with the seed its augmentation draws from."""
    return [(int(i), seed) for i in indices]


class ImageDataset(Dataset):
    """Rows `rows` of a store with their targets; `transform(image=uint8 HWC)["image"]` -> tensor. An item is
    (x, target); x is the image, or (image, meta vector) when the store carries meta (model.meta_head)."""

    def __init__(self, store: ImageStore, rows, targets: np.ndarray | None = None, transform=None):
        self.store, self.rows = store, np.asarray(rows, dtype=np.int64)
        self.targets, self.transform = targets, transform
        if targets is not None and len(targets) != len(self.rows):
            raise ValueError(f"{len(self.rows)} rows but {len(targets)} targets")

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.__getitems__([i])[0]

    def __getitems__(self, batch):
        """A whole batch at once (DataLoader calls this): one read from the store, then per-image transforms.
        `batch`: dataset indices, or (index, seed) pairs (`seeded`): the transform is reseeded wherever the seed
        changes, so consecutive images of one seed draw one stream, as a pure function of it."""
        pairs = [item if isinstance(item, tuple) else (item, None) for item in batch]
        images = self.store.read(self.rows[np.asarray([i for i, _ in pairs], dtype=np.int64)])
        empty, current, out, meta = torch.zeros(0), None, [], self.store.meta
        for (i, seed), img in zip(pairs, images):
            if seed is not None and seed != current:
                self.transform.set_random_seed(seed)
                current = seed
            target = torch.from_numpy(self.targets[i]) if self.targets is not None else empty
            x = self.transform(image=img)["image"]
            out.append((x if meta is None else (x, torch.from_numpy(meta[self.rows[i]])), target))
        return out


class SeededBatches(Sampler):
    """Batches of `sampler`'s rows as (row, seed) pairs (`seeded`), one seed per batch drawn from `generator` (as
    the sampler's shuffle is): an epoch's rows, order and augmentations are a function of the generator's seed
    alone."""

    def __init__(self, sampler: Sampler, batch_size: int, drop_last: bool, generator: torch.Generator,
                 rank: int = 0, world_size: int = 1):
        self.sampler, self.batch_size, self.drop_last, self.generator = sampler, batch_size, drop_last, generator
        self.rank, self.world_size = rank, world_size  # DDP: every rank draws the same batch and takes its slice

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        rows = list(self.sampler)
        seeds = torch.randint(2**31 - 1, (len(self),), generator=self.generator).tolist()
        for b, seed in enumerate(seeds):
            batch = rows[b * self.batch_size:(b + 1) * self.batch_size]
            yield seeded(batch[self.rank::self.world_size], (seed + 7919 * self.rank) % 2**31)


class ExtraRowsSampler(Sampler):
    """One epoch: each of the first n_real rows once plus a fresh random `fraction` of the n_extra (pseudo-labelled)
    rows after them, shuffled together, drawn from `generator`: an epoch's rows are a function of its seed."""

    def __init__(self, n_real: int, n_extra: int, fraction: float, generator: torch.Generator):
        self.n_real, self.n_extra, self.generator = n_real, n_extra, generator
        self.n_drawn = min(n_extra, max(1, round(fraction * n_extra))) if n_extra else 0

    def __len__(self):
        return self.n_real + self.n_drawn

    def __iter__(self):
        extra = self.n_real + torch.randperm(self.n_extra, generator=self.generator)[:self.n_drawn]
        rows = torch.cat([torch.arange(self.n_real), extra])
        return iter(rows[torch.randperm(len(rows), generator=self.generator)].tolist())


def _init_worker(worker_id: int) -> None:
    # One thread per worker: the workers are the parallelism; torch/OpenCV pools inside them would oversubscribe.
    torch.set_num_threads(1)
    decode_in_this_thread()


def make_loader(dataset: ImageDataset, batch_size: int, num_workers: int, train: bool = False,
                drop_last: bool = False, sampler: Sampler | None = None,
                generator: torch.Generator | None = None, rank: int = 0, world_size: int = 1) -> DataLoader:
    """train=True: shuffled (or `sampler`'s rows, drawn from `generator`), seeded batches; reseed each epoch
    with `reseed_epoch`. Otherwise rows in order. Workers persist across epochs; pinned memory with a GPU."""
    decode_in_this_thread()  # without workers, this process decodes beside the model's threads
    if train:
        generator = generator if generator is not None else torch.Generator()
        sampler = sampler if sampler is not None else RandomSampler(dataset, generator=generator)
        batches = SeededBatches(sampler, batch_size, drop_last, generator, rank, world_size)
    else:
        batches = torch.utils.data.BatchSampler(sampler or SequentialSampler(dataset), batch_size, drop_last)
    return DataLoader(dataset, batch_sampler=batches, num_workers=num_workers, worker_init_fn=_init_worker,
                      pin_memory=torch.cuda.is_available(), persistent_workers=num_workers > 0,
                      generator=torch.Generator())  # its own: creating workers never draws from the global RNG


def reseed_epoch(loader: DataLoader, seed: int) -> None:
    """Fix the rows, order and augmentations of one epoch."""
    loader.batch_sampler.generator.manual_seed(seed)
