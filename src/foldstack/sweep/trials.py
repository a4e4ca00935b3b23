"""A sweep's trials: each an experiment whose layer is the base experiment's, then the sweep's shared overrides,
then the trial's own values, written to configs/exp/<sweep>-<hash>.yaml. The name hashes that whole layer: a rerun
finds the same files, and a changed spec makes new trials instead of reusing a name for other settings."""
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

from ..config.loading import deep_merge, nested, parse_overrides, read_yaml
from ..config.files import experiment_file, write_experiment
from ..errors import PipelineError
from ..utils.io import stable_hash
from .spec import SweepSpec


@dataclass(frozen=True)
class Trial:
    name: str       # the experiment: configs/exp/<name>.yaml
    values: dict    # {config key: value} that this trial sets (a grid point, or a point of the search space)
    layer: dict     # the experiment layer written to its file


def base_layer(root: Path, spec: SweepSpec) -> dict:
    """The base experiment's layer with the shared overrides applied: what every trial starts from."""
    path = experiment_file(root, spec.base)
    if not path.is_file() and spec.base != "baseline":
        raise PipelineError(f"base experiment not found: {path}")
    layer = read_yaml(path) if path.is_file() else {}
    return deep_merge(layer, parse_overrides(spec.overrides)) if spec.overrides else layer


def make_trial(sweep: str, start: dict, values: dict) -> Trial:
    values = {k: v.item() if hasattr(v, "item") else v for k, v in values.items()}  # a sampler's numpy scalars
    layer = deep_merge(start, nested(values))
    return Trial(f"{sweep}-{stable_hash(layer, 8)}", values, layer)


def grid_trials(sweep: str, spec: SweepSpec, start: dict) -> list[Trial]:
    """Every combination of the grid's values, in the order the spec lists them (first key slowest)."""
    return [make_trial(sweep, start, dict(zip(spec.grid, point))) for point in itertools.product(*spec.grid.values())]


def format_value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value) if isinstance(value, list) else str(value)


def describe(values: dict) -> str:
    """'train.lr=0.001 data.batch_size=16': a trial's values, as OVERRIDES would set them."""
    return " ".join(f"{k}={format_value(v)}" for k, v in values.items())


def write_trial(root: Path, sweep: str, spec: SweepSpec, trial: Trial) -> Path:
    """configs/exp/<trial>.yaml (written only when its content changes: the header has no date), so the trial
    reruns, stacks and reports like any experiment (EXP=<trial>)."""
    header = [f"Sweep trial of configs/sweep/{sweep}.yaml, written by `make sweep SWEEP={sweep}` (the name hashes "
              f"this layer); rerun it alone with `make oof EXP={trial.name}`.",
              f"Experiment {spec.base}, then the sweep's overrides: {' '.join(spec.overrides) or 'none'}",
              f"This trial: {describe(trial.values)}"]
    return write_experiment(root, trial.name, trial.layer, header)
