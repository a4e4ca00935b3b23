"""The one training step, which the epoch loop, the budget planner's timing, `make lr-find` and `make bench` all run:
a batch onto the device, resized (multiscale) and mixed (mixup), forward and backward at 1/accum_steps of its
gradient (`micro_step`), then the optimizer update (`optimizer_step`) and the EMA's (`train_step`: all of it)."""
from contextlib import nullcontext

import torch

from ..config.schema import Config
from ..data.device import to_device
from ..data.multiscale import multiscale_size, resize_batch
from ..models.meta_head import split_batch, with_images
from .fold import Fold
from .runtime import autocast


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
    at 1/accum_steps of its gradient."""
    tc = cfg.train
    x, target = batch_to_device(f, cfg, x, target)  # resize and mix on the device
    if cfg.data.multiscale:  # the images only (model.meta_head's meta, if any, as it is)
        x = with_images(x, resize_batch(split_batch(x)[0], multiscale_size(cfg.data.multiscale,
                                                                             tc.seed * 1000 + fold, epoch, i)))
    if f.mixup is not None:
        x, target = f.mixup(x, target)
    return forward_backward(f, cfg, x, target, 1 / tc.accum_steps, sync=sync)


def train_step(f: Fold, cfg: Config, fold: int, epoch: int, i: int, n_batches: int, step: int, x, target
               ) -> tuple[torch.Tensor, int]:
    """Batch i of an epoch's n_batches: its micro-step, and when it ends an accumulation group (or the epoch) the
    optimizer update and the EMA's. Returns (the batch's loss, optimizer updates so far)."""
    update = (i + 1) % cfg.train.accum_steps == 0 or i + 1 == n_batches
    loss = micro_step(f, cfg, fold, epoch, i, x, target, sync=update)
    if update:
        optimizer_step(f, cfg)
        step += 1
        if f.ema is not None:
            f.ema.update(f.model, step=step)
    return loss, step
