"""The budget planner, pure arithmetic (no torch): `feasible_plans` gives, for each candidate (model x image size x
batch), the epochs and TTA views whose estimated `make all` time (measured seconds per image times images, stage by
stage) is at most `policy.fill` of the budget, when it reaches its minimum epochs. As the fastest recipes suggest
(airbench; "Budgeted Training", Li et al. 2020: a small net for enough epochs, LR decayed linearly to zero), each
trains for as many epochs as fit; which one runs is decided by evidence (race.py) and priors (policy.py), not size.
"""
import math
import re
import dataclasses
from dataclasses import asdict, dataclass, field

from ..errors import PipelineError

UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_budget(text: str) -> float:
    """'90s' / '10m' / '2h' / '1h30m' / '2.5m' -> seconds."""
    value = str(text).strip().lower()
    parts = re.findall(r"(\d+(?:\.\d+)?)([smh])", value)
    if not parts or "".join(a + b for a, b in parts) != value:
        raise PipelineError(f"BUDGET={text!r}: expected a duration like 90s, 10m, 2h or 1h30m")
    seconds = sum(float(n) * UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise PipelineError(f"BUDGET={text!r}: must be more than 0 seconds")
    return seconds


def budget_name(text: str) -> str:
    """The budget as it appears in file and experiment names: '10m', '1h30m', '2.5m' -> '2p5m'."""
    return str(text).strip().lower().replace(".", "p")


@dataclass(frozen=True)
class Candidate:
    model: str
    img_size: int
    batch_size: int
    pretrained: bool = False


@dataclass(frozen=True)
class Speed:
    """Measured on this machine: seconds per training image (the update and its augmentation) and per image and
    view in evaluation."""
    train_s: float
    eval_s: float


@dataclass(frozen=True)
class Facts:
    """What the run's size depends on: rows, the cache build (seconds per image, all decoders together), fixed costs
    (seconds per run and per fold: set-up, folds, stack, submit) and the seconds the planning itself took."""
    n_train: int
    n_test: int
    decode_s: float = 0.0
    fixed_s: float = 10.0
    per_fold_s: float = 3.0
    planning_s: float = 0.0              # spent measuring and racing: part of the budget too
    trained_s: float = 0.0               # of fold 0, trained in the race by the winner (its fold 0 goes on)


@dataclass(frozen=True)
class Policy:
    fill: float = 0.85                   # share of the budget the estimate may use (the rest: estimate error)
    min_epochs: int = 8                  # from scratch
    min_images_seen: int = 20_000        # from scratch, a fold also sees this many training images (small data
    max_epochs: int = 40                 # sets need more epochs: flowers' 2,300 rows a fold -> 9)
    min_epochs_pretrained: int = 2
    max_epochs_pretrained: int = 10
    folds: int = 3                       # every candidate on one split: the race's fold 0 is the run's fold 0
    watchdog_slack: float = 1.25         # a fold may run this many times its planned seconds
    race_share: float = 0.2              # of the budget, spent racing the best candidates on fold 0 (race.py)
    race_size: int = 4                   # candidates that start the race, at most
    race_epochs: int = 3                 # a candidate races if rung 1 gives it this many epochs (the warmup's and 2)
    keep_fill: float = 0.925             # at the race's real epoch seconds, the winner keeps its schedule (and its
                                         # fold 0) while its run fits this share of the budget; else it restarts

    def epoch_range(self, pretrained: bool, n_train_fold: float) -> tuple[int, int]:
        """(minimum, maximum) epochs of a candidate: pretrained ones converge in a few; from scratch at least
        min_epochs and min_images_seen images."""
        if pretrained:
            return self.min_epochs_pretrained, self.max_epochs_pretrained
        lo = max(self.min_epochs, math.ceil(self.min_images_seen / max(n_train_fold, 1)))
        return min(lo, self.max_epochs), self.max_epochs


@dataclass
class Plan:
    candidate: Candidate
    epochs: int
    folds: int
    tta: list
    budget_s: float
    estimate: dict                       # stage -> seconds
    fold_s: float                        # planned training seconds of one fold
    considered: list = field(default_factory=list)   # [(candidate, epochs it could get)] in ladder order

    @property
    def total_s(self) -> float:
        return sum(self.estimate.values())

    def to_dict(self) -> dict:
        return dict(candidate=asdict(self.candidate), epochs=self.epochs, folds=self.folds, tta=list(self.tta),
                    budget_s=self.budget_s, estimate=self.estimate, fold_s=self.fold_s, total_s=self.total_s,
                    considered=[dict(asdict(c), epochs=e) for c, e in self.considered])


def views(tta: list) -> int:
    """Evaluation views of a predict.tta list (hflip, vflip, d4, five_crop, ten_crop; scales not counted)."""
    return math.prod({"hflip": 2, "vflip": 2, "d4": 8, "five_crop": 6, "ten_crop": 11}.get(name, 1) for name in tta)


def estimate(c: Candidate, speed: Speed, facts: Facts, epochs: int, folds: int, tta: list) -> dict:
    """Seconds per stage of the whole run."""
    n_valid = facts.n_train / folds
    per_epoch = (facts.n_train - n_valid) * speed.train_s + n_valid * speed.eval_s
    v = views(tta)
    return dict(plan=facts.planning_s, cache=(facts.n_train + facts.n_test) * facts.decode_s,
                train=folds * (epochs * per_epoch + facts.per_fold_s) - facts.trained_s,
                predict=(facts.n_train + folds * facts.n_test) * v * speed.eval_s,
                fixed=facts.fixed_s)


def affordable_epochs(c: Candidate, speed: Speed, facts: Facts, folds: int, tta: list, limit_s: float) -> int:
    """The most epochs whose whole run fits in limit_s (0 when not even one)."""
    base = sum(estimate(c, speed, facts, 0, folds, tta).values())
    one = sum(estimate(c, speed, facts, 1, folds, tta).values()) - base
    return max(0, math.floor((limit_s - base) / one)) if limit_s > base else 0


def planned(c: Candidate, speed: Speed, facts: Facts, epochs: int, folds: int, tta: list, budget_s: float) -> Plan:
    est = estimate(c, speed, facts, epochs, folds, tta)
    return Plan(c, epochs, folds, list(tta), budget_s, {k: round(v, 1) for k, v in est.items()},
                round((est["train"] + facts.trained_s) / folds, 1))  # a whole fold's, fold 0's race seconds too


def plan_candidate(c: Candidate, speed: Speed, facts: Facts, tta: list, budget_s: float,
                   policy: Policy = Policy()) -> "Plan | None":
    """c's plan: as many epochs as fit (at most its maximum) with the configured TTA, or without TTA when the TTA
    would cost c its minimum epochs; None when c cannot get its minimum epochs either way."""
    lo, hi = policy.epoch_range(c.pretrained, facts.n_train * (policy.folds - 1) / policy.folds)
    for tta_try in ([list(tta), []] if tta else [[]]):
        e = affordable_epochs(c, speed, facts, policy.folds, tta_try, policy.fill * budget_s)
        if e >= lo:
            return planned(c, speed, facts, min(e, hi), policy.folds, tta_try, budget_s)
    return None


def feasible_plans(budget_s: float, facts: Facts, speeds: dict, tta: list, policy: Policy = Policy()) -> list[Plan]:
    """speeds: {Candidate: Speed} in ladder order. The plan of every candidate that reaches its minimum epochs, in
    that order (each estimate at most policy.fill x budget_s), each with the whole ladder's epochs as `considered`."""
    considered = [(c, affordable_epochs(c, s, facts, policy.folds, [], policy.fill * budget_s))
                  for c, s in speeds.items()]
    plans = [plan_candidate(c, s, facts, tta, budget_s, policy) for c, s in speeds.items()]
    return [dataclasses.replace(p, considered=considered) for p in plans if p is not None]


def fallback_plan(budget_s: float, facts: Facts, speeds: dict, policy: Policy = Policy()) -> Plan:
    """When no candidate reaches its minimum epochs: the cheapest with the epochs that fit, if one does; else a
    PipelineError saying what the budget would need."""
    c, speed = next(iter(speeds.items()))
    e = affordable_epochs(c, speed, facts, policy.folds, [], policy.fill * budget_s)
    if e < 1:
        need = sum(estimate(c, speed, facts, 1, policy.folds, []).values()) / policy.fill
        raise PipelineError(f"BUDGET of {budget_s:.0f}s is too small: the cheapest candidate ({c.model} at "
                            f"{c.img_size}px, {policy.folds} folds, 1 epoch) needs about {need:.0f}s on this machine")
    return dataclasses.replace(planned(c, speed, facts, e, policy.folds, [], budget_s), considered=[(c, e)])


# The race's arithmetic (race.py runs it): successive halving, rung r giving each candidate t0 x 2^r seconds in all.
def rung_counts(k: int) -> list[int]:
    """Candidates racing at each rung, halving (rounded up) until two are left: 4 -> [4, 2]; 5 -> [5, 3, 2]."""
    counts = [k]
    while counts[-1] > 2:
        counts.append(math.ceil(counts[-1] / 2))
    return counts


def delta(r: int) -> int:
    """A candidate's seconds in rung r, in units of t0 (its total at rung r is t0 x 2^r)."""
    return 2 ** (r - 1) if r else 1


def first_rung_seconds(k: int, race_s: float) -> float:
    """t0: each candidate's seconds at rung 1 of a race of k in race_s."""
    counts = rung_counts(k)
    return race_s / sum(n * delta(r) for r, n in enumerate(counts))


def winner_share(k: int) -> float:
    """The share of the race's seconds the winner trains: its fold 0 goes on in the run, not spent on choosing."""
    return 2 ** (len(rung_counts(k)) - 1) * first_rung_seconds(k, 1.0)
