"""model.meta_head: competition.tabular_cols in the network. The columns are encoded by data/tabular.py's
TabularEncoder (the level-2 stacker's encoding: fitted on the train rows, no label, so the same fit encodes the test
rows again at prediction), run through a small MLP (MetaBranch) whose output is concatenated to the pooled image
features before the head.

With the meta head on, the image store carries each row's meta vector (`store_meta`) and a batch's x is the pair
(images, meta); without it x stays the image tensor, so every other run's code and artifact keys are unchanged.
`split_batch` / `with_images` are the one place that tells the two apart: only the images are normalised, resized,
TTA-transformed; mixup mixes meta with the images' lam and pairing."""
import numpy as np
import torch
from torch import nn

from ..errors import PipelineError

DROP_RATE = 0.1  # dropout after the branch's hidden layer


class MetaBranch(nn.Sequential):
    """(N, n_inputs) encoded tabular columns -> (N, width): Linear, BatchNorm, ReLU, Dropout."""

    def __init__(self, n_inputs: int, width: int):
        super().__init__(nn.Linear(n_inputs, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
                         nn.Dropout(DROP_RATE))


def split_batch(x) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images, meta or None) of a batch: the pair (a tuple, or the list the DataLoader collates it into) or the
    image tensor alone."""
    if isinstance(x, (tuple, list)):
        images, meta = x
        return images, meta
    return x, None


def with_images(x, images: torch.Tensor):
    """The batch `x` with its images replaced (resized, mixed), its meta as it was."""
    return (images, x[1]) if isinstance(x, (tuple, list)) else images


def meta_inputs(state: dict) -> int:
    """The encoded width a checkpoint's meta branch takes (0: it has none): what a model is rebuilt with at
    prediction, where no store is at hand."""
    weight = state.get("meta.0.weight")
    return 0 if weight is None else int(weight.shape[1])


def store_meta(ctx) -> np.ndarray:
    """(train rows + test rows, F) float32: the encoded tabular columns of every image store row (train rows, then
    test rows in the test table's order, as the store holds them)."""
    from ..data.table import input_dir
    from ..data.tabular import tabular_matrices

    comp = ctx.cfg.competition  # not without tabular_cols: config.loading.check_across_sections refuses that
    train, test, _ = tabular_matrices(comp, input_dir(comp, ctx.root, ctx.comp), ctx.train, ctx.test)
    return np.vstack([train, test]).astype(np.float32)


def refuse_meta_head(cfg, what: str) -> None:
    """One line for the stages that cannot give the network its tabular input (loose image files, a bundle's
    kernel, an ONNX graph of one input)."""
    if cfg.model.meta_head:
        raise PipelineError(f"{what} cannot give the network model.meta_head's tabular columns "
                            f"(competition.tabular_cols): use an experiment with model.meta_head=0")
