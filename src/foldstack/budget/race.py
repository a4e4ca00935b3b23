"""The race of `make plan` (and `make all BUDGET=...`): the best candidates by the priors (policy.py), each planned as
the whole run it would be, train fold 0 of that run, the run's own schedule and split; successive halving keeps the
better half by the validation metric at each rung until one is left. Every candidate in a rung gets the same seconds
(rung r: t0 x 2^r in all), so a candidate wins by what it scores in the time, not by its size.

The race is fold 0 of the real runs: the winner's is continued by `make all` (the same config, so the same models
folder and its resumable `.fold0.partial/`), so only the losers' seconds are spent on choosing. Its state is saved
beside the plan after every rung (<comp>-budget-<B>.race.json): a killed race resumes where it stopped."""
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import pipeline
from ..artifacts import is_complete, partial_path
from ..lineage import load_folds, train_dir
from ..metrics import HIGHER_IS_BETTER
from ..utils.io import atomic_write_text, read_csv, remove_tree
from ..utils.tables import format_table
from .planner import delta, rung_counts

log = logging.getLogger("foldstack")


class Pause(Exception):
    """Raised by the race's epoch hook: the fold stops after a saved epoch, resumable from its last.pt."""


class RaceClock:
    """What the train stage's `budget` hook gets in the race: the fold trains without its watchdog (the race's own
    clock pauses it; the run's watchdog counts these seconds when it goes on); the models' key stays the plan's."""

    @staticmethod
    def configure(cfg, fold: int, work: Path, folds_left: int) -> tuple:
        return cfg.model_copy(update=dict(train=cfg.train.model_copy(update=dict(time_limit=None)))), None


@dataclass
class Entrant:
    """A candidate in the race: its plan (planner.Plan.to_dict()), experiment layer, and what each rung measured."""
    label: str
    plan: dict
    layer: dict
    rungs: list = field(default_factory=list)      # [{epoch, metric, valid_loss, seconds}] after each rung
    out_at: int | None = None                      # the rung it was dropped after

    @property
    def epoch_s(self) -> float:
        """Seconds an epoch took (the last rung's rows: set-up excluded), else the plan's."""
        last = self.rungs[-1] if self.rungs else None
        return last["epoch_s"] if last else self.plan["fold_s"] / self.plan["epochs"]


@dataclass
class Race:
    comp: str
    exp: str                       # the plan's experiment: every entrant trains under its name
    metric: str
    race_s: float
    entrants: list
    path: Path                     # race.json
    spent_s: float = 0.0           # the race's seconds spent so far (by earlier processes too: a resumed race)
    setup: dict = field(default_factory=dict)   # what the planning measured before the race (facts, the ladder)

    def save(self) -> None:
        data = asdict(self)
        del data["path"]
        atomic_write_text(self.path, json.dumps(data, indent=1) + "\n")  # unsorted: the layers keep their order

    @classmethod
    def load(cls, path: Path) -> "Race":
        data = json.loads(path.read_text())
        return cls(**dict(data, path=path, entrants=[Entrant(**e) for e in data["entrants"]]))

    def alive(self, rung: int) -> list:
        return [e for e in self.entrants if e.out_at is None or e.out_at >= rung]

    def winner(self) -> Entrant:
        [best] = [e for e in self.entrants if e.out_at is None]
        return best

    def table(self) -> list[str]:
        """Candidate, its metric and epoch at each rung, seconds trained, and the outcome, as lines."""
        n = len(rung_counts(len(self.entrants)))

        def cell(e: Entrant, r: int) -> str:
            return f"{e.rungs[r]['metric']:.4f} @{e.rungs[r]['epoch']}" if r < len(e.rungs) else ""

        rows = [[e.label, *(cell(e, r) for r in range(n)), f"{e.rungs[-1]['seconds']:.0f}s" if e.rungs else "",
                 "won" if e.out_at is None else f"out after rung {e.out_at + 1}"] for e in self.entrants]
        header = ["candidate", *(f"rung {r + 1} {self.metric} @epoch" for r in range(n)), "trained", ""]
        return format_table(header, rows).splitlines()


def entrant_context(race: Race, e: Entrant, root: Path, overrides: list):
    """e's fold 0 under the plan's experiment name, its layer in memory (the plan's file is written after)."""
    return pipeline.context(race.comp, race.exp, overrides=overrides, root=root, fold=0, layer=e.layer)


def fold0_folder(ctx) -> Path:
    """Where the entrant's fold 0 trains (`.fold0.partial/` until complete, then fold0/)."""
    final = train_dir(ctx, load_folds(ctx).key).path / "fold0"
    return final if is_complete(final) else partial_path(final)


def discard_fold0(ctx) -> None:
    """Remove an entrant's fold 0 trained in the race (ctx: its entrant_context): the run will not continue it."""
    remove_tree(fold0_folder(ctx))


def train_rung(ctx, e: Entrant, seconds: float) -> dict:
    """Train e's fold 0 for about `seconds` more (whole epochs, at least one, at most its plan's), then pause it
    before an epoch that would end past its seconds (taken to cost what the last one did)."""
    epochs, done = e.plan["epochs"], e.rungs[-1]["epoch"] if e.rungs else 0
    t0, seen = time.time(), []

    def on_epoch(fold, epoch, row):
        seen.append(row["seconds"])
        if epoch < epochs and time.time() - t0 + seen[-1] > seconds:
            raise Pause(epoch)

    try:
        pipeline.stage_function("train")(ctx, on_epoch=on_epoch, budget=RaceClock())
    except Pause:
        pass
    rows = read_csv(fold0_folder(ctx) / "log.csv", "fold 0's training log")
    new, last = rows.iloc[done:], rows.iloc[-1]
    return dict(epoch=int(last["epoch"]), metric=float(last[ctx.cfg.competition.metric]),
                valid_loss=float(last["valid_loss"]), seconds=round(float(rows["seconds"].astype(float).sum()), 1),
                epoch_s=round(float(new["seconds"].astype(float).mean()) if len(new) else e.epoch_s, 2))


def run_race(race: Race, root: Path, overrides: list) -> Entrant:
    """Run (or resume) the race: each candidate of a rung gets its share of the race's seconds left (the later
    rungs keep theirs), then the better half goes on; the losers' fold 0 folders are removed. Returns the winner."""
    counts, t0 = rung_counts(len(race.entrants)), time.time()
    deadline = t0 + race.race_s - race.spent_s
    contexts = {}

    def context(e):
        if e.label not in contexts:
            contexts[e.label] = entrant_context(race, e, root, overrides)
        return contexts[e.label]

    for r in range(len(counts)):
        field_ = race.alive(r)
        todo = [e for e in field_ if len(e.rungs) <= r]
        for i, e in enumerate(todo):
            ctx = context(e)
            if not e.rungs:
                pipeline.stage_function("folds")(ctx)
            left = max(deadline - time.time(), 0.0)
            units_left = (len(todo) - i) * delta(r) + sum(m * delta(q) for q, m in enumerate(counts) if q > r)
            seconds = left * delta(r) / units_left
            log.info(f"race: rung {r + 1}/{len(counts)}: {e.label}: {seconds:.0f}s of training "
                     f"({left:.0f}s of the race left)")
            e.rungs.append(train_rung(ctx, e, seconds))
            race.spent_s, t0 = round(race.spent_s + time.time() - t0, 1), time.time()
            race.save()
            log.info(f"race: {e.label}: {race.metric} {e.rungs[-1]['metric']:.4f} at epoch {e.rungs[-1]['epoch']} "
                     f"({e.rungs[-1]['seconds']:.0f}s trained)")
        keep = 1 if r == len(counts) - 1 else counts[r + 1]
        for e in rank(field_, r, race.metric)[keep:]:
            if e.out_at is None:
                e.out_at = r
                discard_fold0(context(e))  # its numbers stay in the race's table
        race.save()
    return race.winner()


def rank(entrants: list, rung: int, metric: str) -> list:
    """Best first by the rung's metric, then its validation loss; a tie keeps the priors' order (a stable sort)."""
    sign = -1 if HIGHER_IS_BETTER[metric] else 1
    return sorted(entrants, key=lambda e: (sign * e.rungs[rung]["metric"], e.rungs[rung]["valid_loss"]))


def race_epoch_seconds(e: Entrant) -> float:
    """The winner's seconds per epoch as the race measured them (real epochs of the run's fold 0), median of rungs."""
    return float(np.median([r["epoch_s"] for r in e.rungs]))
