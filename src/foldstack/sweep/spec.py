"""configs/sweep/<name>.yaml: a base experiment, settings every trial shares, and either a grid (every combination
of the listed values) or a search (ranges and choices, a number of trials, early stopping; docs/sweep.md). Its keys
are config keys, checked against the schema when the spec is read: a typo stops the sweep before anything runs."""
import re
from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import Field, ValidationError, model_validator

from ..config.base import Section
from ..config.loading import nested, parse_overrides, read_yaml, validate
from ..config.loading import _validation_message
from ..errors import PipelineError

# Keys a trial may not vary: every trial must be on the same split (and competition) to be compared and stacked.
SHARED_SECTIONS = ("competition", "folds")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
KINDS = ("choice", "uniform", "loguniform", "randint")


class Dimension(Section):
    """One searched key: exactly one of choice, uniform, loguniform, randint."""
    choice: Optional[list[Union[str, int, float, bool, None]]] = Field(None, min_length=1)
    """Values to choose from (scalars: Optuna's categorical)."""
    uniform: Optional[tuple[float, float]] = None
    """[low, high]: a float drawn uniformly."""
    loguniform: Optional[tuple[float, float]] = None
    """[low, high], both > 0: a float drawn uniformly on the log scale (learning rates, weight decay)."""
    randint: Optional[tuple[int, int]] = None
    """[low, high]: an integer, both ends included."""

    @model_validator(mode="after")
    def _one_kind(self):
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of choice, uniform, loguniform, randint (got {given or 'none'})")
        bounds = getattr(self, given[0])
        if given[0] != "choice" and not bounds[0] < bounds[1]:
            raise ValueError(f"{given[0]} [{bounds[0]}, {bounds[1]}]: low must be below high")
        if given[0] == "loguniform" and bounds[0] <= 0:
            raise ValueError(f"loguniform [{bounds[0]}, {bounds[1]}]: both bounds must be > 0")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def examples(self) -> list:
        """The choices, or both bounds: what the spec gives (values checked against the config schema)."""
        return list(getattr(self, self.kind))

    def contains(self, value) -> bool:
        """Whether a value (a recorded trial's) is a point of this dimension."""
        if self.kind == "choice":
            return value in self.choice
        kind_ok = isinstance(value, int) if self.kind == "randint" else isinstance(value, (int, float))
        return kind_ok and not isinstance(value, bool) and self.examples[0] <= value <= self.examples[1]


class Asha(Section):
    """Early stopping of bad trials: Ray Tune's ASHA on fold 0's validation metric, epoch by epoch."""
    grace_period: int = Field(1, ge=1)
    """Epochs every trial runs before it can be stopped."""
    reduction_factor: float = Field(2.0, gt=1)
    """At each rung (grace_period x reduction_factor^k epochs) a trial continues only if it is in the best
    1 / reduction_factor of the trials that reached the rung so far."""


class Search(Section):
    """A search: `trials` points of `space` drawn by Optuna's TPE sampler (seeded), bad ones stopped by ASHA."""
    space: dict[str, Dimension] = Field(min_length=1)
    """{config key: {choice: [...]} | {uniform: [lo, hi]} | {loguniform: [lo, hi]} | {randint: [lo, hi]}}."""
    trials: int = Field(ge=1)
    """How many points to try in all (a resumed search tries only those not yet run)."""
    seed: int = 0
    """The sampler's seed."""
    asha: Optional[Asha] = Asha()
    """Early stopping of bad trials; null: every trial runs all its epochs."""


class Resources(Section):
    """What one (trial, fold) task asks Ray for; Ray runs as many at once as the machines hold."""
    cpus: float = Field(1.0, gt=0)
    """CPU cores per task (torch uses as many threads)."""
    gpus: Union[float, Literal["auto"]] = "auto"
    """GPUs per task; `auto`: 1 when the cluster has GPUs, else 0. 0.5 puts two folds on each GPU."""
    memory_gb: Optional[float] = Field(None, gt=0)
    """Memory per task in GiB, so that Ray does not start more folds on a machine than its memory holds."""


class SweepSpec(Section):
    """The spec of one sweep; its trials are experiments named <sweep>-<hash>."""
    base: str = "baseline"
    """The experiment every trial starts from (configs/exp/<base>.yaml)."""
    overrides: list[str] = []
    """Settings every trial shares, as OVERRIDES are written (`train.epochs=3`)."""
    objective: Literal["oof", "fold0"] = "oof"
    """What ranks the trials: `oof`, the competition metric on the OOF predictions of every fold (every trial
    that was not stopped trains all its folds); `fold0`, fold 0's validation metric (a quick search: only the
    best trials then train their other folds)."""
    grid: Optional[dict[str, list]] = None
    """{config key: [values]}: a trial for every combination."""
    search: Optional[Search] = None
    """A search space instead of a grid."""
    best: int = Field(3, ge=1)
    """How many of the best trials the leaderboard names (and the printed `make stack` blends)."""
    resources: Resources = Resources()
    """Per task: cpus, gpus, memory_gb."""

    @model_validator(mode="after")
    def _grid_or_search(self):
        if (self.grid is None) == (self.search is None):
            raise ValueError("give either a grid or a search, not " + ("both" if self.grid else "neither"))
        if self.grid is not None and (not self.grid or any(not v for v in self.grid.values())):
            raise ValueError("the grid needs at least one key, each with a non-empty list of values")
        return self


def check_keys(spec: SweepSpec, source: str) -> None:
    """The shared overrides and every key of the grid or the space with each value it can take (a grid's
    values, a space's bounds or choices) validate against the config schema."""
    validate(parse_overrides(spec.overrides), f"{source}: overrides")
    grid = spec.grid if spec.grid is not None else {key: d.examples for key, d in spec.search.space.items()}
    for key, values in grid.items():
        if key.split(".", 1)[0] in SHARED_SECTIONS:
            raise PipelineError(f"{source}: {key}: trials must share the split to be compared and stacked: set "
                                f"{SHARED_SECTIONS[0]}.* and {SHARED_SECTIONS[1]}.* keys in `overrides`")
        for value in values:
            validate(nested({key: value}), f"{source}: {'grid' if spec.grid is not None else 'search.space'}")


def load_spec(root: Path, name: str) -> tuple[Path, SweepSpec]:
    """(the spec's path, the validated spec) of configs/sweep/<name>.yaml; a PipelineError names the file."""
    path = Path(root) / "configs" / "sweep" / f"{name}.yaml"
    if not NAME.fullmatch(name or ""):
        raise PipelineError(f"SWEEP={name!r}: a sweep name is letters, digits, '_', '-' and '.'")
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise PipelineError(f"sweep spec not found: {path} (sweeps: {', '.join(known) or 'none'})")
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    try:
        spec = SweepSpec.model_validate(read_yaml(path))
    except ValidationError as e:  # the schema's message without pydantic's prefixes; a spec-wide rule has no key
        message = _validation_message(e, str(shown)).replace("config error in ", "", 1).replace("Value error, ", "")
        raise PipelineError(message.replace(f"{shown}: : ", f"{shown}: ")) from None
    check_keys(spec, str(shown))
    return path, spec
