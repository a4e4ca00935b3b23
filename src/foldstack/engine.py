"""Training and inference loops: one fold, read top to bottom."""
import io
import logging
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3
from tqdm import tqdm

from .config import Config
from .data.dataset import ImageDataset, make_loader, reseed_epoch
from .data.transforms import build_transforms
from .loss import create_loss, logits_to_probs
from .metrics import is_better, score
from .models import create_model
from .utils.io import atomic_write_bytes, atomic_write_csv
from .utils.plots import plot_curves
from .utils.seed import rng_state, seed_everything, set_rng_state

log = logging.getLogger("foldstack")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(cfg: Config, device: torch.device):
    if cfg.train.amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=getattr(torch, cfg.train.amp_dtype))
    return nullcontext()


def progress(iterable, cfg: Config, desc: str):
    """A tqdm bar on a terminal; silent in logs and CI (per-epoch log lines say enough there)."""
    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True, disable=None if cfg.runtime.progress else True)


def save_checkpoint(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@torch.no_grad()
def predict_probs(models: list, loader, cfg: Config, device, tta=(), desc: str = "predict") -> np.ndarray:
    """Class probabilities averaged over models and views (identity + each flip in `tta`).

    Several models share one pass over the loader, so test images are decoded once, not once per fold."""
    for model in models:
        model.eval()
    views = [lambda x: x] + [{"hflip": lambda x: x.flip(3), "vflip": lambda x: x.flip(2)}[t] for t in tta]
    task, out = cfg.competition.task, []
    for x, _ in progress(loader, cfg, desc):
        x = x.to(device, non_blocking=True)
        with autocast(cfg, device):
            probs = sum(logits_to_probs(m(view(x)), task) for m in models for view in views)
        out.append(probs.cpu() / (len(models) * len(views)))
    return torch.cat(out).numpy().astype(np.float64)


def train_fold(cfg: Config, paths: list, y: np.ndarray, folds: np.ndarray, fold: int, out_dir: Path) -> dict:
    """Train one fold into out_dir (last.pt, best.pt, log.csv); resumes from out_dir/last.pt if present."""
    tc, comp = cfg.train, cfg.competition
    device = resolve_device(cfg.runtime.device)
    seed_everything(tc.seed + fold)
    train_idx, valid_idx = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)

    train_ds = ImageDataset([paths[i] for i in train_idx], y[train_idx], build_transforms(cfg.data, train=True))
    valid_ds = ImageDataset([paths[i] for i in valid_idx], y[valid_idx], build_transforms(cfg.data, train=False))
    batch = cfg.data.batch_size
    train_loader = make_loader(train_ds, batch, cfg.runtime.num_workers, shuffle=True,
                               drop_last=len(train_ds) > batch, generator=torch.Generator())
    valid_loader = make_loader(valid_ds, batch * 2, cfg.runtime.num_workers)

    model = create_model(cfg.model, y.shape[1]).to(device)
    optimizer = create_optimizer_v2(model, opt=tc.optimizer, lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler, _ = create_scheduler_v2(optimizer, sched=tc.scheduler, num_epochs=tc.epochs,
                                       warmup_epochs=tc.warmup_epochs, min_lr=tc.min_lr,
                                       step_on_epochs=False, updates_per_epoch=len(train_loader))
    scaler = torch.amp.GradScaler("cuda", enabled=tc.amp and device.type == "cuda" and tc.amp_dtype == "float16")
    ema = ModelEmaV3(model, decay=tc.ema_decay) if tc.ema else None
    loss_fn = create_loss(cfg.loss, comp.task)

    start_epoch, step, best, rows = 0, 0, None, []
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if last_path.is_file():
        state = load_checkpoint(last_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        if ema is not None:
            ema.module.load_state_dict(state["ema"])
        start_epoch, step, best, rows = state["epoch"] + 1, state["step"], state["best"], state["log"]
        set_rng_state(state["rng"])
        log.info(f"fold {fold}: resuming after epoch {start_epoch} of {tc.epochs} from {last_path}")

    for epoch in range(start_epoch, tc.epochs):
        t0 = time.time()
        reseed_epoch(train_loader, tc.seed * 10_000 + fold * 1000 + epoch)
        model.train()
        losses = []
        bar = progress(train_loader, cfg, f"fold {fold} epoch {epoch + 1}/{tc.epochs}")
        for x, target in bar:
            x, target = x.to(device, non_blocking=True), target.to(device, non_blocking=True)
            with autocast(cfg, device):
                loss = loss_fn(model(x), target)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if tc.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            scheduler.step_update(step)
            if ema is not None:
                ema.update(model, step=step)
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")

        eval_model = ema.module if ema is not None else model
        probs = predict_probs([eval_model], valid_loader, cfg, device, desc="valid")
        value = score(comp.metric, y[valid_idx], probs, comp.task, comp.tag_threshold)
        valid_loss = score("log_loss", y[valid_idx], probs, comp.task)
        rows.append(dict(epoch=epoch + 1, train_loss=float(np.mean(losses)), valid_loss=valid_loss,
                         **{comp.metric: value}, lr=optimizer.param_groups[0]["lr"], seconds=time.time() - t0))
        if is_better(comp.metric, value, best):
            best = value
            save_checkpoint(best_path, {"model": eval_model.state_dict(), "epoch": epoch + 1, "score": value})
        save_checkpoint(last_path, dict(
            model=model.state_dict(), optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
            scaler=scaler.state_dict(), ema=ema.module.state_dict() if ema is not None else None,
            epoch=epoch, step=step, best=best, log=rows, rng=rng_state()))
        atomic_write_csv(out_dir / "log.csv", pd.DataFrame(rows))
        log.info(f"fold {fold} epoch {epoch + 1}/{tc.epochs}: train_loss {rows[-1]['train_loss']:.4f} "
                 f"valid_loss {valid_loss:.4f} {comp.metric} {value:.4f} ({rows[-1]['seconds']:.0f}s)")

    plot_curves(pd.DataFrame(rows), comp.metric, out_dir / "curves.png", f"fold {fold}")
    return dict(best=best, last=rows[-1][comp.metric], epochs=len(rows), valid_rows=int(len(valid_idx)))


def weights_for_prediction(fold_dir: Path, which: str) -> dict:
    """The state dict to predict with: the EMA weights when EMA was on."""
    if which == "best":
        return load_checkpoint(fold_dir / "best.pt")["model"]
    state = load_checkpoint(fold_dir / "last.pt")
    return state["ema"] if state["ema"] is not None else state["model"]
