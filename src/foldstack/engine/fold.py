"""What one fold trains with (model and its training wrapper, optimizer, schedule, loss, mixup, weight averaging,
early stopping, loaders), built from the config in one place: `build_fold`."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from timm.utils import ModelEmaV3

from .. import distributed as dist
from ..averaging import SWA, EarlyStopping, Snapshots
from ..config.schema import Config
from ..data.dataset import ExtraRowsSampler, ImageDataset, make_loader
from ..data.images import ImageStore
from ..data.mixup import create_mixup
from ..data.transforms import build_transforms
from ..loss.distill import DistillLoss
from ..loss.factory import create_loss
from ..metrics import HIGHER_IS_BETTER, is_better
from ..models.factory import create_model
from ..optim.factory import create_optimizer
from ..optim.schedule import create_schedule
from ..utils.seed import seed_everything
from ..wide import ClassTargets, is_wide, keep_top, refuse_dense
from .runtime import num_workers, resolve_device, use_channels_last


@dataclass
class ExtraRows:
    """Rows every fold trains on and never validates on: pseudo-labelled or teacher-labelled test rows."""
    rows: np.ndarray            # their rows in the ImageStore (test rows: ImageStore.test_rows)
    targets: np.ndarray         # (M, K); with distillation (M, 2K): [hard, teacher probabilities]
    fraction: float = 1.0       # share of them drawn (afresh) into each epoch


@dataclass
class Fold:
    """Everything one fold trains with. The stateful pieces are what last.pt holds (see `stateful`)."""
    model: torch.nn.Module      # what is saved and evaluated
    net: torch.nn.Module        # what trains: the model, or its DDP / torch.compile wrapper
    optimizer: torch.optim.Optimizer
    schedule: object
    scaler: torch.amp.GradScaler
    loss_fn: torch.nn.Module
    mixup: object | None
    ema: ModelEmaV3 | None
    swa: SWA | None
    snapshots: Snapshots | None
    stopper: EarlyStopping
    train_loader: torch.utils.data.DataLoader
    valid_loader: torch.utils.data.DataLoader
    valid_idx: np.ndarray
    device: torch.device
    n_outputs: int              # the model's; targets have 2 x n_outputs columns when distilling
    channels_last: bool
    keep_top: int = 0           # predict.keep_top resolved: validation keeps each row's best classes (wide.py)

    def stateful(self) -> dict:
        return dict(model=self.model, optimizer=self.optimizer, scheduler=self.schedule, scaler=self.scaler,
                    ema=self.ema.module if self.ema is not None else None, swa=self.swa,
                    snapshots=self.snapshots, stopper=self.stopper, mixup=self.mixup)


def build_fold(cfg: Config, images: ImageStore, y: np.ndarray, folds: np.ndarray, fold: int, out_dir: Path,
               extra: ExtraRows | None = None, teacher: np.ndarray | None = None, weights: Path | None = None) -> Fold:
    """images: train rows 0..N-1 (then test rows). extra: rows added to the training part only. teacher: (N, K)
    soft targets of the train rows (the teacher's OOF: row i from the model whose validation fold held i).
    weights: the backbone's pretrained weights file (Context.weights), else model.pretrained_path or random.
    Under torchrun each rank trains on its slice of every batch and validates on its share of the rows."""
    tc, comp = cfg.train, cfg.competition
    device = dist.setup(resolve_device(cfg.runtime.device), cfg.data.batch_size)
    seed_everything(tc.seed + fold)
    train_idx, valid_idx = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
    top = keep_top(comp, cfg.predict, len(y))
    if teacher is not None and is_wide(y, teacher):
        refuse_dense("distillation (distill.teacher: its soft targets)")
    targets = y if teacher is None else np.hstack([y, teacher]).astype(np.float32)
    train_rows, train_targets = train_idx, targets[train_idx]
    if extra is not None:
        train_rows = np.concatenate([train_rows, extra.rows])
        train_targets = (ClassTargets.concat([train_targets, extra.targets]) if is_wide(train_targets)
                         else np.vstack([train_targets, extra.targets]))
    train_ds = ImageDataset(images, train_rows, train_targets, build_transforms(cfg.data, True, images.float_pixels))
    valid_rows = dist.shard(valid_idx)
    valid_ds = ImageDataset(images, valid_rows, y[valid_rows], build_transforms(cfg.data, False, images.float_pixels))
    batch, generator, workers = cfg.data.batch_size, torch.Generator(), num_workers(cfg, device)
    sampler = ExtraRowsSampler(len(train_idx), len(extra.rows), extra.fraction, generator) if extra else None
    per_epoch = len(sampler) if sampler is not None else len(train_ds)
    train_loader = make_loader(train_ds, batch, workers, train=True, drop_last=per_epoch > batch, sampler=sampler,
                               generator=generator, rank=dist.rank(), world_size=dist.world_size())
    valid_loader = make_loader(valid_ds, batch * 2, workers)
    loss_fn = create_loss(cfg.loss, comp.task, y[train_idx])
    if teacher is not None:
        loss_fn = DistillLoss(loss_fn, cfg.distill.alpha, cfg.distill.temperature, comp.task)

    layout = use_channels_last(cfg, device)
    n_meta = images.meta.shape[1] if images.meta is not None else 0  # model.meta_head's tabular input
    model = create_model(cfg.model, y.shape[1], comp.task, weights, n_meta).to(device)
    if layout:
        model = model.to(memory_format=torch.channels_last)
    net = dist.wrap(model, device, find_unused=tc.freeze_epochs > 0)
    if cfg.runtime.compile:
        net = torch.compile(net)
    optimizer = create_optimizer(model, tc)  # before any freezing: frozen parameters still get their groups
    updates_per_epoch = -(-len(train_loader) // tc.accum_steps)
    schedule = create_schedule(optimizer, tc, updates_per_epoch, maximize=HIGHER_IS_BETTER[comp.metric])
    return Fold(
        model=model, net=net, optimizer=optimizer, schedule=schedule,
        scaler=torch.amp.GradScaler("cuda", enabled=tc.amp and device.type == "cuda" and tc.amp_dtype == "float16"),
        loss_fn=loss_fn,
        mixup=create_mixup(cfg.mixup, y.shape[1]),
        ema=ModelEmaV3(model, decay=tc.ema_decay) if tc.ema else None,
        swa=SWA(model, optimizer, tc) if tc.swa else None,
        snapshots=Snapshots(out_dir, tc) if tc.snapshots else None,
        stopper=EarlyStopping(tc.early_stopping, lambda new, old: is_better(comp.metric, new, old)),
        train_loader=train_loader, valid_loader=valid_loader, valid_idx=valid_idx, device=device,
        n_outputs=y.shape[1], channels_last=layout, keep_top=top)
