"""One schedule interface over timm's schedulers (stepped per optimizer update), plateau (per epoch, on the
validation metric) and torch's OneCycleLR; every group's LR is the schedule's value times its `lr_scale`. A budgeted
fold (train.time_limit) follows its time too (`budget_progress`): a fold the watchdog stops is at its final LR."""
import math

import torch
from timm.scheduler import create_scheduler_v2

from ..config.training import Train
from ..errors import PipelineError


class _Wrapped:
    """What last.pt holds of a schedule: the state of the scheduler it wraps (`impl`)."""

    def state_dict(self) -> dict:
        return self.impl.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.impl.load_state_dict(state)


class Plateau(_Wrapped):
    """Linear warmup per update, then torch's ReduceLROnPlateau on the validation metric once per epoch. Its
    state (best metric, patience counter) is checkpointed; timm's deprecated plateau wrapper loses it on resume."""

    def __init__(self, optimizer, tc: Train, updates_per_epoch: int, maximize: bool):
        self.optimizer, self.warmup_epochs = optimizer, tc.warmup_epochs
        self.warmup = tc.warmup_epochs * updates_per_epoch
        scales = [g["lr_scale"] for g in optimizer.param_groups]
        self.start, self.peak = [tc.warmup_lr * s for s in scales], [tc.lr * s for s in scales]
        self.impl = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max" if maximize else "min", factor=tc.decay_rate, patience=tc.patience_epochs,
            min_lr=[tc.min_lr * s for s in scales])
        self.step_update(0)

    def step_update(self, step: int) -> None:
        if step <= self.warmup or step == 0:
            frac = step / self.warmup if self.warmup else 1.0
            for group, lo, hi in zip(self.optimizer.param_groups, self.start, self.peak):
                group["lr"] = lo + frac * (hi - lo)

    def step(self, epoch: int, metric: float) -> None:
        """After epoch `epoch` (0-based): the metric counts once warmup is over."""
        if epoch + 1 >= self.warmup_epochs and not math.isnan(metric):
            self.impl.step(metric)


def budget_progress(updates: int, total_updates: int, time_fraction: float) -> float:
    """How far through its schedule a fold is: the larger of its updates and its time spent (each a fraction of
    the planned ones), at most 1."""
    return min(1.0, max(updates / max(total_updates, 1), time_fraction))


class Schedule(_Wrapped):
    def __init__(self, optimizer: torch.optim.Optimizer, tc: Train, updates_per_epoch: int, maximize: bool):
        self.name, self.per_epoch = tc.scheduler, tc.scheduler == "plateau"
        self.total_updates = tc.epochs * updates_per_epoch
        if tc.scheduler == "plateau":
            self.impl = Plateau(optimizer, tc, updates_per_epoch, maximize)
            return
        if tc.scheduler == "onecycle":
            self.impl = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=[tc.lr * g["lr_scale"] for g in optimizer.param_groups],
                total_steps=tc.epochs * updates_per_epoch, pct_start=tc.onecycle_pct_start,
                cycle_momentum=all("momentum" in g or "betas" in g for g in optimizer.param_groups))
            return
        if tc.epochs % tc.cycles:
            raise PipelineError(f"train.cycles={tc.cycles} must divide train.epochs={tc.epochs}")
        # linear: timm's poly schedule with power 1, straight from the peak to min_lr at the last update.
        sched = {"exponential": "step", "none": "constant", "linear": "poly"}.get(tc.scheduler, tc.scheduler)
        self.impl, _ = create_scheduler_v2(
            optimizer, sched=sched, num_epochs=tc.epochs // tc.cycles, cycle_limit=tc.cycles,
            cycle_decay=tc.cycle_decay, warmup_epochs=0 if tc.scheduler == "none" else tc.warmup_epochs,
            warmup_lr=tc.warmup_lr, min_lr=tc.min_lr,
            decay_epochs=1 if tc.scheduler == "exponential" else tc.decay_epochs,
            decay_milestones=tc.decay_milestones, decay_rate=1.0 if tc.scheduler == "linear" else tc.decay_rate,
            step_on_epochs=False, updates_per_epoch=updates_per_epoch)
        self.impl.step_update(0)  # the first update already uses the scheduled (and lr_scale'd) LR

    def step_update(self, step: int, time_fraction: float = 0.0) -> None:
        """After optimizer update number `step` (1-based); time_fraction: the share of the fold's time limit spent
        (timm's schedules only: OneCycleLR steps one update at a time, plateau's decay is per epoch)."""
        if self.name == "onecycle":
            self.impl.step()
        elif time_fraction > 0 and not self.per_epoch:
            self.impl.step_update(max(step, round(budget_progress(step, self.total_updates, time_fraction)
                                                  * self.total_updates)))
        else:
            self.impl.step_update(step)

    def step_epoch(self, epoch: int, metric: float) -> None:
        """After epoch `epoch` (0-based) was validated: only plateau looks at the metric."""
        if self.per_epoch:
            self.impl.step(epoch, metric)


def create_schedule(optimizer, tc: Train, updates_per_epoch: int, maximize: bool = True) -> Schedule:
    return Schedule(optimizer, tc, updates_per_epoch, maximize)
