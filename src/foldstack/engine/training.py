"""One fold's training, read top to bottom in `train_fold`: build the fold, resume from last.pt, then per epoch
train, validate, checkpoint; SWA's averaged model and the fold's metrics at the end."""
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import distributed as dist
from ..checkpoints import load_checkpoint, save_checkpoint
from ..config.schema import Config
from ..data.dataset import reseed_epoch
from ..data.images import ImageStore
from ..errors import PipelineError
from ..metrics import comp_score, score
from ..models.net import set_backbone_trainable
from ..utils.io import atomic_write_csv
from ..utils.plots import plot_curves
from ..utils.seed import rng_state, set_rng_state
from ..tracking import epoch_metrics
from ..wide import TopProbs
from .fold import ExtraRows, Fold, build_fold
from .inference import predict_probs
from .runtime import progress
from .step import batch_to_device, train_step

log = logging.getLogger("foldstack")


def train_fold(cfg: Config, images: ImageStore, y: np.ndarray, folds: np.ndarray, fold: int, out_dir: Path,
               extra: ExtraRows | None = None, teacher: np.ndarray | None = None, weights: Path | None = None,
               on_epoch=None, tracker=None) -> dict:
    """Train one fold into out_dir (last.pt, best.pt, [swa.pt, snapshot_*.pt], log.csv, curves.png), resuming from
    its last.pt; validation is on the fold's real train rows only. on_epoch(fold, epoch, row) runs after each saved
    epoch (from 1; row: its log.csv row), e.g. for a sweep's scheduler; if it raises, the fold stops resumable.
    tracker: a tracking.Run, given every epoch's row (a resumed fold's earlier epochs first, those it lacks)."""
    tc, comp = cfg.train, cfg.competition
    f = build_fold(cfg, images, y, folds, fold, out_dir, extra, teacher, weights)
    y_valid = y[f.valid_idx]
    start_epoch, step, rows = resume(f, out_dir / "last.pt", fold, tc.epochs)
    watchdog = Watchdog(tc.time_limit, sum(r["seconds"] for r in rows))
    if tracker is not None:
        tracker.log_epochs(rows)
    for epoch in range(start_epoch, tc.epochs):
        if f.stopper.stopped or watchdog.fired:
            break
        t0 = time.time()
        begin_epoch(f, cfg, fold, epoch)
        train_loss, step = train_one_epoch(f, cfg, fold, epoch, step, watchdog)
        train_seconds = time.time() - t0
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
        save_epoch(f, out_dir, eval_model, epoch, value, step, rows)
        log.info(f"fold {fold} epoch {epoch + 1}/{tc.epochs}: train_loss {train_loss:.4f} "
                 f"valid_loss {valid_loss:.4f} {comp.metric} {value:.4f} ({rows[-1]['seconds']:.0f}s)"
                 + (" - early stop" if f.stopper.stopped else ""))
        if tracker is not None:  # after last.pt: a kill between the two is caught up on resume
            tracker.log_step(epoch + 1, epoch_metrics(rows[-1], f.optimizer.param_groups,
                                                      epoch_images(f, cfg) / max(train_seconds, 1e-9)))
        if on_epoch is not None:
            on_epoch(fold, epoch + 1, dict(rows[-1]))
        if watchdog.fired:
            log.warning(f"fold {fold}: watchdog: train.time_limit={tc.time_limit:.0f}s reached in epoch {epoch + 1} "
                        f"of {tc.epochs} ({watchdog.elapsed():.0f}s trained): the fold stops here at its final LR (the "
                        f"schedule follows the time too), validated and saved as usual")

    metrics = fold_metrics(f, cfg, fold, out_dir, rows, y_valid, extra)
    if watchdog.fired:
        metrics["watchdog"] = dict(time_limit=tc.time_limit, seconds=round(watchdog.elapsed(), 1),
                                   epochs_run=len(rows), epochs_planned=tc.epochs)
    if dist.is_main():
        plot_curves(pd.DataFrame(rows), comp.metric, out_dir / "curves.png", f"fold {fold}")
    dist.barrier()  # rank 0's files are complete before any rank moves on
    return metrics


class Watchdog:
    """train.time_limit: the fold's training seconds (epochs run before a resume included) against its limit,
    checked after every optimizer update; once fired the epoch ends there and no other starts."""

    def __init__(self, limit: float | None, already: float = 0.0):
        self.limit, self.already, self.start, self.fired = limit, already, time.time(), False
        self.seconds = already  # at the last check, agreed by every rank

    def elapsed(self) -> float:
        return self.already + time.time() - self.start

    def check(self, device: torch.device) -> bool:
        """Under torchrun every rank stops at the same update (rank clocks differ: they agree through a max)."""
        if self.limit is not None and not self.fired:
            self.seconds = dist.max_over_ranks(self.elapsed(), device)
            self.fired = self.seconds >= self.limit
        return self.fired

    def fraction(self) -> float:
        """The share of the limit spent at the last check: 1 once fired, 0 without a limit."""
        return 1.0 if self.fired else self.seconds / self.limit if self.limit else 0.0


def resume(f: Fold, last_path: Path, fold: int, epochs: int) -> tuple[int, int, list]:
    """(first epoch to run, optimizer updates so far, log rows so far): from last.pt when an interrupted run left
    one (every stateful piece and the RNG state restored), else a fresh start."""
    if not last_path.is_file():
        return 0, 0, []
    state = load_checkpoint(last_path)
    for name, component in f.stateful().items():
        if component is not None:
            component.load_state_dict(state[name])
    set_rng_state(state["rng"])
    log.info(f"fold {fold}: resuming after epoch {state['epoch'] + 1} of {epochs} from {last_path}")
    return state["epoch"] + 1, state["step"], state["log"]


def epoch_images(f: Fold, cfg: Config) -> int:
    """Images in one pass over the training part (every rank's slice of each batch together)."""
    batches = f.train_loader.batch_sampler
    return min(len(batches) * cfg.data.batch_size, len(batches.sampler))


def epoch_seed(tc, fold: int, epoch: int) -> int:
    """The shuffle and augmentation seed of one pass over a fold's training part."""
    return tc.seed * 10_000 + fold * 1000 + epoch


def begin_epoch(f: Fold, cfg: Config, fold: int, epoch: int) -> None:
    """The epoch's data stream (a function of its seed), train mode, the backbone frozen or not, mixup and SWA
    told which epoch it is."""
    reseed_epoch(f.train_loader, epoch_seed(cfg.train, fold, epoch))
    f.model.train()
    set_backbone_trainable(f.model, epoch >= cfg.train.freeze_epochs)
    if f.mixup is not None:
        f.mixup.set_epoch(epoch)
    if f.swa is not None:
        f.swa.begin_epoch(epoch)


def train_one_epoch(f: Fold, cfg: Config, fold: int, epoch: int, step: int,
                    watchdog: Watchdog | None = None) -> tuple[float, int]:
    """One pass over the training part (cut short when the watchdog fires); returns (mean loss, optimizer updates
    so far)."""
    n_batches, total = len(f.train_loader), torch.zeros((), device=f.device)  # no per-step host sync
    bar = progress(f.train_loader, cfg, f"fold {fold} epoch {epoch + 1}/{cfg.train.epochs}")
    for i, (x, target) in enumerate(bar):
        loss, updated = train_step(f, cfg, fold, epoch, i, n_batches, step, x, target)
        total += loss.float()
        if updated == step:
            continue  # gradient accumulation: sum 1/accum of each batch's gradient, then one update
        step = updated
        stop = watchdog is not None and watchdog.check(f.device)
        if f.swa is None or not f.swa.active(epoch):  # a budgeted fold's LR also follows its time
            f.schedule.step_update(step, watchdog.fraction() if watchdog is not None else 0.0)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{total.item() / (i + 1):.4f}")
        if stop:
            return total.item() / (i + 1), step
    return total.item() / max(n_batches, 1), step


def validate(f: Fold, cfg: Config, model: torch.nn.Module, desc: str = "valid") -> np.ndarray:
    """Probabilities of every validation row (under torchrun: each rank predicts its share, all get all)."""
    return dist.gather_shards(predict_probs([model], f.valid_loader, cfg, f.device, desc=desc, top=f.keep_top),
                              len(f.valid_idx))


def check_validation(fold: int, epoch: int, metric: str, value: float, probs: np.ndarray) -> None:
    """A NaN metric would pick best.pt, step the plateau schedule and count for early stopping, and NaN
    probabilities argmax to class 0 without a word: stop with the reason instead."""
    if not np.isfinite(probs.probs if isinstance(probs, TopProbs) else probs).all():
        cause = "the predictions are not finite: training diverged (lower train.lr, or set train.grad_clip)"
    elif not np.isfinite(value):
        cause = "the metric is undefined on this fold's validation rows (a class missing from the fold?)"
    else:
        return
    raise PipelineError(f"fold {fold} epoch {epoch + 1}: validation {metric} is {value:.4g}: {cause}")


def save_on_main(path: Path, state: dict) -> None:
    if dist.is_main():
        save_checkpoint(path, state)


def save_epoch(f: Fold, out_dir: Path, eval_model: torch.nn.Module, epoch: int, value: float, step: int,
               rows: list) -> None:
    """The early stopper counts the epoch's score; best.pt when it improved, a snapshot when one is due, and
    every epoch last.pt (all that resuming needs) and log.csv."""
    if f.stopper.update(value):
        save_on_main(out_dir / "best.pt", {"model": eval_model.state_dict(), "epoch": epoch + 1, "score": value})
    snapshot = f.snapshots.end_epoch(epoch) if f.snapshots is not None else None
    if snapshot is not None:
        save_on_main(snapshot, {"model": eval_model.state_dict(), "epoch": epoch + 1, "score": value})
    save_on_main(out_dir / "last.pt", dict(
        {name: c.state_dict() if c is not None else None for name, c in f.stateful().items()},
        epoch=epoch, step=step, log=rows, rng=rng_state()))
    if dist.is_main():
        atomic_write_csv(out_dir / "log.csv", pd.DataFrame(rows))


def fold_metrics(f: Fold, cfg: Config, fold: int, out_dir: Path, rows: list, y_valid: np.ndarray,
                 extra: ExtraRows | None) -> dict:
    """The fold's manifest metrics; with SWA, its averaged model first (BN recomputed, validated, swa.pt)."""
    tc, comp = cfg.train, cfg.competition
    metrics = dict(best=f.stopper.best, last=rows[-1][comp.metric], epochs=len(rows), valid_rows=len(f.valid_idx),
                   train_rows=len(f.train_loader.dataset) - (len(extra.rows) if extra else 0),
                   extra_rows=len(extra.rows) if extra else 0,
                   extra_rows_per_epoch=f.train_loader.batch_sampler.sampler.n_drawn if extra else 0)
    if f.swa is not None and f.swa.n_averaged:
        reseed_epoch(f.train_loader, epoch_seed(tc, fold, tc.epochs))  # the BN pass: a fixed stream too
        swa_model = f.swa.finalize((batch_to_device(f, cfg, x, t) for x, t in f.train_loader), f.device)
        metrics["swa"] = comp_score(comp, y_valid, validate(f, cfg, swa_model, "valid swa"))
        save_on_main(out_dir / "swa.pt", {"model": swa_model.state_dict(), "n_averaged": f.swa.n_averaged,
                                             "score": metrics["swa"]})
        log.info(f"fold {fold}: SWA of {f.swa.n_averaged} epochs, BN recomputed: {comp.metric} {metrics['swa']:.4f}")
    if f.snapshots is not None:
        metrics["snapshots"] = list(f.snapshots.written)
    if f.model.pretrained is not None:
        metrics["pretrained"] = f.model.pretrained
    return metrics
