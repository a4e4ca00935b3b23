"""A budgeted run against its plan: each fold gets the epochs that fit what is left of the training time at the
folds' measured speed (`FoldBudget`); at the end, planned against actual seconds per stage (`report`)."""
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..utils.io import atomic_write_json, read_csv
from ..utils.tables import format_table
from .planner import Policy

log = logging.getLogger("foldstack")

AFTER_TRAINING = ("oof", "stack", "submit")


def planned_seconds(data: dict) -> dict:
    """The plan's estimate in the stages' terms (the cache is built by the first stage that reads images: train)."""
    est = data["estimate"]
    return dict(plan=est["plan"], folds=est["fixed"] / 4, train=est["cache"] + est["train"], oof=est["predict"],
                stack=est["fixed"] / 2, submit=est["fixed"] / 4)


def report(data: dict, actual: dict, total_s: float) -> list[str]:
    """Planned against actual seconds per stage, as lines."""
    planned = planned_seconds(data)
    rows = [[name, f"{planned[name]:.0f}s", f"{actual[name]:.0f}s"] for name in planned if name in actual]
    rows.append(["total", f"{sum(planned.values()):.0f}s", f"{total_s:.0f}s"])
    lines = format_table(["stage", "planned", "actual"], rows).splitlines()
    lines.append(f"(budget {data['budget_s']:.0f}s)")
    return lines


@dataclass(frozen=True)
class FoldShare:
    """What one fold of a budgeted run gets (recorded in its manifest under metrics.budget)."""
    epochs: int                  # at most the plan's
    epochs_planned: int
    time_limit: float            # its watchdog: at most the plan's, at most its share of the time left
    share_s: float               # its share of the training time left when it started
    epoch_s: float               # the seconds an epoch was taken to cost
    basis: str                   # "plan", or the measured fold it was taken from ("fold 1": the slowest so far)
    resumed_after: int = 0       # epochs it had trained before (the race's winner's fold 0)


@dataclass
class FoldBudget:
    """The training time of a budgeted run: every fold must have trained by `deadline` (time.time()). An epoch costs
    what the plan says, then what the slowest measured fold took (set-up included): on a machine that slowed down,
    the folds left get fewer epochs instead of being cut by the watchdog mid-schedule."""
    deadline: float
    epochs: int                  # the plan's epochs per fold
    time_limit: float            # the plan's watchdog (train.time_limit)
    epoch_s: float               # the plan's seconds per epoch of a fold (its set-up spread over its epochs)
    measured: dict = field(default_factory=dict)  # fold -> seconds per epoch it took

    @classmethod
    def from_plan(cls, data: dict, start: float, fill: float = Policy.fill) -> "FoldBudget":
        """The training time of a plan (its .plan.json) run from `start`: up to the budget less the stages after
        training, as planned with the plan's share for estimate error (1 - fill) added back. The watchdog is the
        plan's fold seconds (after the race: at the seconds its epochs really took) times the slack."""
        after = sum(v for k, v in planned_seconds(data).items() if k in AFTER_TRAINING)
        return cls(deadline=start + data["budget_s"] - after / fill, epochs=data["epochs"],
                   time_limit=data["fold_s"] * Policy.watchdog_slack, epoch_s=data["fold_s"] / data["epochs"])

    def share(self, folds_left: int, now: float, done: int = 0, done_s: float = 0.0) -> FoldShare:
        """What the next of `folds_left` folds gets, starting at `now`; a fold resumed after `done` epochs trained
        in `done_s` seconds (the race's fold 0) keeps its schedule and gets its share on top of them."""
        share = max(self.deadline - now, 0.0) / max(folds_left, 1)
        slowest = max(self.measured, key=self.measured.get, default=None)
        epoch_s = self.measured[slowest] if slowest is not None else self.epoch_s
        epochs = self.epochs if done else min(self.epochs, max(1, math.floor(share / epoch_s)))
        basis = "plan" if slowest is None else f"fold {slowest}"
        return FoldShare(epochs, self.epochs, round(max(min(self.time_limit, done_s + share), 1.0), 1),
                         round(share, 1), round(epoch_s, 2), basis, done)

    def record(self, fold: int, seconds: float, epochs_run: int) -> None:
        """A fold trained in `seconds` (wall, set-up included) over `epochs_run` epochs (a cut one counts)."""
        self.measured[fold] = seconds / max(epochs_run, 1)

    def configure(self, cfg, fold: int, work: Path, folds_left: int) -> tuple:
        """(the config fold trains with: epochs and watchdog of its share of the time left, the share for its manifest),
        decided once (budget.json in the work folder: a resume keeps it); the models' key stays the plan's."""
        decided, log_csv = work / "budget.json", work / "log.csv"
        if decided.is_file():
            share = json.loads(decided.read_text())
        else:
            rows = read_csv(log_csv, "training log") if log_csv.is_file() else None  # trained in the race
            done = (len(rows), float(rows["seconds"].astype(float).sum())) if rows is not None else (0, 0.0)
            fold_share = self.share(folds_left, time.time(), *done)
            log.info(self.describe(fold, fold_share))
            share = asdict(fold_share)
            atomic_write_json(decided, share)
        train = cfg.train.model_copy(update=dict(epochs=share["epochs"], time_limit=share["time_limit"]))
        return cfg.model_copy(update=dict(train=train)), share

    def describe(self, fold: int, s: FoldShare) -> str:
        fewer = f" (planned {s.epochs_planned}: behind the plan)" if s.epochs < s.epochs_planned else ""
        if s.resumed_after:
            fewer += f", going on after the {s.resumed_after} the race trained"
        return (f"budget: fold {fold}: {s.epochs} epochs{fewer}, {s.epoch_s:.1f}s an epoch "
                f"({'planned' if s.basis == 'plan' else 'as ' + s.basis + ', the slowest so far'}), "
                f"{s.share_s:.0f}s of training time left for it, watchdog at {s.time_limit:.0f}s")
