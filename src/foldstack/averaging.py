"""Weight averaging beyond EMA: SWA (torch.optim.swa_utils) and snapshot ensembles, and early stopping. Each has
state_dict/load_state_dict: its state lives in last.pt with the model's, so a resumed fold continues it exactly."""
import warnings
from pathlib import Path

import torch
from torch.optim.swa_utils import SWALR, AveragedModel, update_bn

from .config.training import Train


class SWA:
    """From epoch `swa_start` on: SWALR anneals the LR to swa_lr (per epoch), and the weights at each such
    epoch's end are averaged. finalize() recomputes the BatchNorm statistics of the average on the training part."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, tc: Train):
        # swa_start < 1 is a fraction of the epochs (recipes keep working when train.epochs is overridden)
        self.start = int(tc.swa_start * tc.epochs) if tc.swa_start < 1 else int(tc.swa_start)
        self.optimizer, self.tc = optimizer, tc
        self.averaged = AveragedModel(model)
        self.scheduler: SWALR | None = None

    def active(self, epoch: int) -> bool:
        return epoch >= self.start

    def begin_epoch(self, epoch: int) -> None:
        if self.active(epoch) and self.scheduler is None:
            self.scheduler = self._make_scheduler()  # takes over from the main schedule from here on

    def _make_scheduler(self) -> SWALR:
        lrs = [self.tc.swa_lr * g.get("lr_scale", 1.0) for g in self.optimizer.param_groups]
        with warnings.catch_warnings():  # SWALR steps once on construction, before this epoch's optimizer steps
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step()` before")
            return SWALR(self.optimizer, swa_lr=lrs, anneal_epochs=self.tc.swa_anneal_epochs, anneal_strategy="cos")

    def end_epoch(self, model: torch.nn.Module, epoch: int) -> None:
        if self.active(epoch):
            self.averaged.update_parameters(model)
            self.scheduler.step()

    @property
    def n_averaged(self) -> int:
        return int(self.averaged.n_averaged)

    def finalize(self, loader, device) -> torch.nn.Module:
        """The averaged model with BatchNorm statistics recomputed by one pass over `loader`: batches already on
        `device`, each a tuple whose first element is the model's input (update_bn's contract; an (images, meta)
        input, model.meta_head, is the first element whole)."""
        update_bn(loader, self.averaged)
        return self.averaged.module

    def state_dict(self) -> dict:
        return dict(averaged=self.averaged.state_dict(),
                    scheduler=self.scheduler.state_dict() if self.scheduler is not None else None)

    def load_state_dict(self, state: dict) -> None:
        self.averaged.load_state_dict(state["averaged"])
        if state["scheduler"] is not None:
            self.scheduler = self._make_scheduler()  # construction steps the LR once: put it back as saved
            self.scheduler.load_state_dict(state["scheduler"])
            for group, lr in zip(self.optimizer.param_groups, self.scheduler.get_last_lr()):
                group["lr"] = lr


class Snapshots:
    """Snapshot ensembles (Huang et al. 2017): with `train.cycles` cosine restarts, the weights at each cycle's
    end are written to snapshot_<c>.pt; prediction can average them (predict.checkpoint=snapshots)."""

    def __init__(self, out_dir: Path, tc: Train):
        self.out_dir, self.cycle_epochs = Path(out_dir), tc.epochs // tc.cycles
        self.written: list[str] = []

    def end_epoch(self, epoch: int) -> Path | None:
        """The file to write this epoch's weights to, at a cycle's end, else None."""
        if (epoch + 1) % self.cycle_epochs:
            return None
        name = f"snapshot_{(epoch + 1) // self.cycle_epochs}.pt"
        if name not in self.written:
            self.written.append(name)
        return self.out_dir / name

    def state_dict(self) -> dict:
        return dict(written=list(self.written))

    def load_state_dict(self, state: dict) -> None:
        self.written = list(state["written"])


class EarlyStopping:
    """Stop after `patience` epochs without a better validation metric."""

    def __init__(self, patience: int | None, is_better):
        self.patience, self.is_better = patience, is_better
        self.best, self.bad_epochs, self.stopped = None, 0, False

    def update(self, value: float) -> bool:
        """Record one epoch's metric; True when it is the best so far."""
        improved = self.is_better(value, self.best)
        self.bad_epochs = 0 if improved else self.bad_epochs + 1
        if improved:
            self.best = value
        self.stopped = self.patience is not None and self.bad_epochs >= self.patience
        return improved

    def state_dict(self) -> dict:
        return dict(best=self.best, bad_epochs=self.bad_epochs, stopped=self.stopped)

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad_epochs, self.stopped = state["best"], state["bad_epochs"], state["stopped"]
