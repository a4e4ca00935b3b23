"""Training and inference loops: one fold, read top to bottom."""
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from timm.utils import ModelEmaV3
from tqdm import tqdm

from . import distributed as dist
from .averaging import SWA, EarlyStopping, Snapshots
from .checkpoints import load_checkpoint, save_checkpoint
from .config import Config
from .data.dataset import ExtraRowsSampler, ImageDataset, auto_workers, make_loader, reseed_epoch
from .data.device import to_device
from .data.images import ImageStore
from .data.mixup import create_mixup
from .data.multiscale import multiscale_size, resize_batch
from .data.transforms import build_transforms
from .errors import PipelineError
from .loss import DistillLoss, create_loss, logits_to_probs
from .metrics import HIGHER_IS_BETTER, comp_score, is_better, score
from .models import create_model, set_backbone_trainable
from .optim import create_optimizer, create_schedule
from .tta import build_views, forward_views, merge_views
from .utils.io import atomic_write_csv
from .utils.plots import plot_curves
from .utils.seed import rng_state, seed_everything, set_rng_state

log = logging.getLogger("foldstack")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def num_workers(cfg: Config, device: torch.device) -> int:
    n = cfg.runtime.num_workers
    return auto_workers(device, dist.local_world_size()) if n == "auto" else n


def use_channels_last(cfg: Config, device: torch.device) -> bool:
    flag = cfg.runtime.channels_last
    return device.type == "cuda" if flag == "auto" else flag


def autocast(cfg: Config, device: torch.device):
    if cfg.train.amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=getattr(torch, cfg.train.amp_dtype))
    return nullcontext()


def progress(iterable, cfg: Config, desc: str):
    """A tqdm bar on a terminal; silent in logs and CI (per-epoch log lines say enough there)."""
    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True, disable=None if cfg.runtime.progress else True)


def tta_views(cfg: Config) -> list:
    """The predict section's TTA views (identity first) at the validation image size."""
    p = cfg.predict
    return build_views(p.tta, p.tta_scales, p.tta_crop_fraction, cfg.data.img_size)


@torch.inference_mode()
def predict_probs(models: list, loader, cfg: Config, device, views=None, desc: str = "predict", plain: bool = False):
    """Class probabilities (N, K) averaged over models; each model's views merged by predict.tta_merge.

    Several models share one pass over the loader, so test images are decoded once, not once per fold; all
    views of a batch go through a model in one batched call (chunked at runtime.infer_batch images).
    views: from `tta_views` (default: the identity alone). plain=True also returns the identity view's
    probabilities from the same pass: TTA's gain is measured without a second run."""
    views = views or build_views([], [], 1.0, cfg.data.img_size)
    layout = use_channels_last(cfg, torch.device(device))
    for model in models:
        model.eval()
        if layout:  # weights in the layout of the batches (a no-op for a model trained here)
            model.to(memory_format=torch.channels_last)
    task, merged_out, plain_out = cfg.competition.task, [], []
    for x, _ in progress(loader, cfg, desc):
        x = to_device(x, device, cfg.data, layout)
        merged = identity = 0
        for model in models:
            with autocast(cfg, device):
                probs = forward_views(lambda batch: logits_to_probs(model(batch), task), x, views,
                                      cfg.runtime.infer_batch)
            merged = merged + (probs[0].float() if len(views) == 1 else
                               merge_views(probs.float(), cfg.predict.tta_merge, task))
            identity = identity + probs[0].float()
        merged_out.append(merged.cpu() / len(models))
        plain_out.append(identity.cpu() / len(models))
    merged = torch.cat(merged_out).numpy().astype(np.float64)
    return (merged, torch.cat(plain_out).numpy().astype(np.float64)) if plain else merged


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

    def stateful(self) -> dict:
        return dict(model=self.model, optimizer=self.optimizer, scheduler=self.schedule, scaler=self.scaler,
                    ema=self.ema.module if self.ema is not None else None, swa=self.swa,
                    snapshots=self.snapshots, stopper=self.stopper, mixup=self.mixup)


def build_fold(cfg: Config, images: ImageStore, y: np.ndarray, folds: np.ndarray, fold: int, out_dir: Path,
               extra: ExtraRows | None = None, teacher: np.ndarray | None = None) -> Fold:
    """images: train rows 0..N-1 (then test rows). extra: rows added to the training part only. teacher: (N, K)
    soft targets of the train rows (the teacher's OOF: row i from the model whose validation fold held i).
    Under torchrun each rank trains on its slice of every batch and validates on its share of the rows."""
    tc, comp = cfg.train, cfg.competition
    device = dist.setup(resolve_device(cfg.runtime.device), cfg.data.batch_size)
    seed_everything(tc.seed + fold)
    train_idx, valid_idx = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
    targets = y if teacher is None else np.hstack([y, teacher]).astype(np.float32)
    train_rows, train_targets = train_idx, targets[train_idx]
    if extra is not None:
        train_rows, train_targets = np.concatenate([train_rows, extra.rows]), np.vstack([train_targets, extra.targets])
    train_ds = ImageDataset(images, train_rows, train_targets, build_transforms(cfg.data, train=True))
    valid_rows = dist.shard(valid_idx)
    valid_ds = ImageDataset(images, valid_rows, y[valid_rows], build_transforms(cfg.data, train=False))
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
    model = create_model(cfg.model, y.shape[1], comp.task).to(device)
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
        n_outputs=y.shape[1], channels_last=layout)


def batch_to_device(f: Fold, cfg: Config, x, target):
    return to_device(x, f.device, cfg.data, f.channels_last), target.to(f.device, non_blocking=True)


def forward_backward(f: Fold, cfg: Config, x, target, loss_scale: float = 1.0, sync: bool = True) -> torch.Tensor:
    """x, target already on the device (batch_to_device). sync=False: a gradient-accumulation micro-step; DDP
    skips its all-reduce until the last one."""
    with autocast(cfg, f.device), (nullcontext() if sync or not hasattr(f.net, "no_sync") else f.net.no_sync()):
        # margin heads use the (hard) target; others ignore it
        loss = f.loss_fn(f.net(x, target[:, :f.n_outputs]), target)
        f.scaler.scale(loss * loss_scale).backward()
    return loss.detach()


def optimizer_step(f: Fold, cfg: Config) -> None:
    if cfg.train.grad_clip:
        f.scaler.unscale_(f.optimizer)
        torch.nn.utils.clip_grad_norm_(f.model.parameters(), cfg.train.grad_clip)
    f.scaler.step(f.optimizer)
    f.scaler.update()
    f.optimizer.zero_grad(set_to_none=True)


def micro_step(f: Fold, cfg: Config, fold: int, epoch: int, i: int, x, target, sync: bool = True) -> torch.Tensor:
    """Batch i of an epoch, as training sees it (on the device, multiscale size, mixup), forward and backward
    at 1/accum_steps of its gradient. The one training step: `make lr-find` runs it too."""
    tc = cfg.train
    x, target = batch_to_device(f, cfg, x, target)  # resize and mix on the device
    if cfg.data.multiscale:
        x = resize_batch(x, multiscale_size(cfg.data.multiscale, tc.seed * 1000 + fold, epoch, i))
    if f.mixup is not None:
        x, target = f.mixup(x, target)
    return forward_backward(f, cfg, x, target, 1 / tc.accum_steps, sync=sync)


def train_one_epoch(f: Fold, cfg: Config, fold: int, epoch: int, step: int) -> tuple[float, int]:
    """One pass over the training part; returns (mean loss, optimizer updates so far)."""
    tc, accum = cfg.train, cfg.train.accum_steps
    n_batches, total = len(f.train_loader), torch.zeros((), device=f.device)  # no per-step host sync
    bar = progress(f.train_loader, cfg, f"fold {fold} epoch {epoch + 1}/{tc.epochs}")
    for i, (x, target) in enumerate(bar):
        update = (i + 1) % accum == 0 or i + 1 == n_batches
        total += micro_step(f, cfg, fold, epoch, i, x, target, sync=update).float()
        if not update:
            continue  # gradient accumulation: sum 1/accum of each batch's gradient, then one update
        optimizer_step(f, cfg)
        step += 1
        if f.swa is None or not f.swa.active(epoch):
            f.schedule.step_update(step)
        if f.ema is not None:
            f.ema.update(f.model, step=step)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{total.item() / (i + 1):.4f}")
    return total.item() / max(n_batches, 1), step


def epoch_seed(tc, fold: int, epoch: int) -> int:
    """The shuffle and augmentation seed of one pass over a fold's training part."""
    return tc.seed * 10_000 + fold * 1000 + epoch


def validate(f: Fold, cfg: Config, model: torch.nn.Module, desc: str = "valid") -> np.ndarray:
    """Probabilities of every validation row (under torchrun: each rank predicts its share, all get all)."""
    return dist.gather_shards(predict_probs([model], f.valid_loader, cfg, f.device, desc=desc), len(f.valid_idx))


def check_validation(fold: int, epoch: int, metric: str, value: float, probs: np.ndarray) -> None:
    """A NaN metric would pick best.pt, step the plateau schedule and count for early stopping, and NaN
    probabilities argmax to class 0 without a word: stop with the reason instead."""
    if not np.isfinite(probs).all():
        cause = "the predictions are not finite: training diverged (lower train.lr, or set train.grad_clip)"
    elif not np.isfinite(value):
        cause = "the metric is undefined on this fold's validation rows (a class missing from the fold?)"
    else:
        return
    raise PipelineError(f"fold {fold} epoch {epoch + 1}: validation {metric} is {value:.4g}: {cause}")


def save_on_main(path: Path, state: dict) -> None:
    if dist.is_main():
        save_checkpoint(path, state)


def train_fold(cfg: Config, images: ImageStore, y: np.ndarray, folds: np.ndarray, fold: int, out_dir: Path,
               extra: ExtraRows | None = None, teacher: np.ndarray | None = None) -> dict:
    """Train one fold into out_dir (last.pt, best.pt, [swa.pt, snapshot_*.pt], log.csv, curves.png);
    resumes from out_dir/last.pt if present. Validation is on the fold's real train rows only."""
    tc, comp = cfg.train, cfg.competition
    f = build_fold(cfg, images, y, folds, fold, out_dir, extra, teacher)
    y_valid = y[f.valid_idx]
    start_epoch, step, rows = 0, 0, []
    last_path = out_dir / "last.pt"
    if last_path.is_file():
        state = load_checkpoint(last_path)
        for name, component in f.stateful().items():
            if component is not None:
                component.load_state_dict(state[name])
        start_epoch, step, rows = state["epoch"] + 1, state["step"], state["log"]
        set_rng_state(state["rng"])
        log.info(f"fold {fold}: resuming after epoch {start_epoch} of {tc.epochs} from {last_path}")

    for epoch in range(start_epoch, tc.epochs):
        if f.stopper.stopped:
            break
        t0 = time.time()
        reseed_epoch(f.train_loader, epoch_seed(tc, fold, epoch))
        f.model.train()
        set_backbone_trainable(f.model, epoch >= tc.freeze_epochs)
        if f.mixup is not None:
            f.mixup.set_epoch(epoch)
        if f.swa is not None:
            f.swa.begin_epoch(epoch)
        train_loss, step = train_one_epoch(f, cfg, fold, epoch, step)
        if f.swa is not None:
            f.swa.end_epoch(f.model, epoch)

        eval_model = f.ema.module if f.ema is not None else f.model
        probs = validate(f, cfg, eval_model)
        value = comp_score(comp, y_valid, probs)
        check_validation(fold, epoch, comp.metric, value, probs)
        valid_loss = score("log_loss", y_valid, probs, comp.task)
        f.schedule.step_epoch(epoch, value)
        rows.append(dict(epoch=epoch + 1, train_loss=train_loss, valid_loss=valid_loss, **{comp.metric: value},
                         lr=f.optimizer.param_groups[0]["lr"], seconds=time.time() - t0))
        if f.stopper.update(value):
            save_on_main(out_dir / "best.pt", {"model": eval_model.state_dict(), "epoch": epoch + 1, "score": value})
        snapshot = f.snapshots.end_epoch(epoch) if f.snapshots is not None else None
        if snapshot is not None:
            save_on_main(snapshot, {"model": eval_model.state_dict(), "epoch": epoch + 1, "score": value})
        save_on_main(last_path, dict(
            {name: c.state_dict() if c is not None else None for name, c in f.stateful().items()},
            epoch=epoch, step=step, log=rows, rng=rng_state()))
        if dist.is_main():
            atomic_write_csv(out_dir / "log.csv", pd.DataFrame(rows))
        log.info(f"fold {fold} epoch {epoch + 1}/{tc.epochs}: train_loss {train_loss:.4f} "
                 f"valid_loss {valid_loss:.4f} {comp.metric} {value:.4f} ({rows[-1]['seconds']:.0f}s)"
                 + (" - early stop" if f.stopper.stopped else ""))

    metrics = dict(best=f.stopper.best, last=rows[-1][comp.metric], epochs=len(rows), valid_rows=len(f.valid_idx),
                   train_rows=len(f.train_loader.dataset) - (len(extra.rows) if extra else 0),
                   extra_rows=len(extra.rows) if extra else 0,
                   extra_rows_per_epoch=f.train_loader.batch_sampler.sampler.n_drawn if extra else 0)
    if f.swa is not None and f.swa.n_averaged:
        reseed_epoch(f.train_loader, epoch_seed(tc, fold, tc.epochs))  # the BN pass: a fixed stream too
        swa_model = f.swa.finalize((batch_to_device(f, cfg, x, t)[0] for x, t in f.train_loader), f.device)
        metrics["swa"] = comp_score(comp, y_valid, validate(f, cfg, swa_model, "valid swa"))
        save_on_main(out_dir / "swa.pt", {"model": swa_model.state_dict(), "n_averaged": f.swa.n_averaged,
                                             "score": metrics["swa"]})
        log.info(f"fold {fold}: SWA of {f.swa.n_averaged} epochs, BN recomputed: {comp.metric} {metrics['swa']:.4f}")
    if f.snapshots is not None:
        metrics["snapshots"] = list(f.snapshots.written)
    if f.model.pretrained is not None:
        metrics["pretrained"] = f.model.pretrained
    if dist.is_main():
        plot_curves(pd.DataFrame(rows), comp.metric, out_dir / "curves.png", f"fold {fold}")
    dist.barrier()  # rank 0's files are complete before any rank moves on
    return metrics
