"""What a bundle's dataset folder holds, as make bundle writes it and the kernel reads it:

    dataset/dataset-metadata.json          the Kaggle dataset's id and title (kaggle datasets create|version)
            bundle.json                    this description: source, experiments, level 2, thresholds, versions
            config.yaml                    the resolved config of the bundle (competition, stack, submit ...)
            experiments/<exp>/config.yaml  each experiment's resolved config (model, data, predict: TTA)
            experiments/<exp>/fold<k>.pt   the state dicts fold k predicts with (predict.checkpoint), one file
            level2/                        the stack's fitted level 2 (stacking/persist.py), when the source is
                                           the stack; thresholds.json beside it for multilabel
            wheels/*.whl, requirements.txt the project and its dependencies, pinned (bundle/wheels.py)

Configs are YAML dumps of the validated Config, read back with yaml.safe_load and validated again; checkpoints
load with weights_only=True. Nothing here imports torch."""
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from ..config.loading import validate
from ..config.schema import Config
from ..errors import PipelineError

BUNDLE_FILE, CONFIG_FILE = "bundle.json", "config.yaml"
EXPERIMENTS, LEVEL2, WHEELS = "experiments", "level2", "wheels"
REQUIREMENTS = "requirements.txt"
FORMAT = 1


@dataclass
class Experiment:
    """One level-1 input: its name, config file and one weights file per fold (paths relative to the dataset)."""
    name: str
    config: str
    folds: list[str]
    models_per_fold: int


@dataclass
class BundleSpec:
    key: str
    comp: str                     # the project's name of the competition (input/<comp>)
    competition: str              # its Kaggle slug (the kernel's competition source, /kaggle/input/<slug>)
    dataset: str                  # the dataset's id, <user>/<slug>
    source: str                   # submit.source: `stack` or an experiment
    round: int                    # the pseudo-label round submitted
    experiments: list[Experiment]
    level2: str | None            # folder of the fitted level 2; None: the source is one experiment
    meta_features: list[str]      # stack.meta_features the level 2 reads from the test images' headers
    thresholds: list[float] | None
    n_outputs: int
    versions: dict                # python, torch, torchvision (assumed on Kaggle's image), foldstack
    wheels: list[str] = field(default_factory=list)
    format: int = FORMAT


def write_config(path: Path, cfg: Config) -> None:
    """cfg as YAML that reads back to the same Config (checked: a value YAML would change is refused)."""
    from ..utils.io import atomic_write_text

    data = cfg.model_dump(mode="json")
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if validate(yaml.safe_load(text), str(path)).model_dump(mode="json") != data:
        raise PipelineError(f"{path}: the resolved config does not read back as written")
    atomic_write_text(path, text)


def read_config(path: Path, **updates: dict) -> Config:
    """A bundled config, with `updates` ({section: {key: value}}: the kernel's input folder, device) over it."""
    from ..config.loading import deep_merge, read_yaml

    return validate(deep_merge(read_yaml(path), updates), str(path))


def write_spec(path: Path, spec: BundleSpec) -> None:
    from ..utils.io import atomic_write_json

    atomic_write_json(path, asdict(spec))


def read_spec(dataset: Path) -> BundleSpec:
    path = Path(dataset) / BUNDLE_FILE
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')}, this code reads {FORMAT}")
        data["experiments"] = [Experiment(**e) for e in data["experiments"]]
        return BundleSpec(**data)
    except FileNotFoundError:
        raise PipelineError(f"no bundle in {dataset}: {BUNDLE_FILE} not found (--dataset: the bundle's dataset "
                            f"folder)") from None
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise PipelineError(f"{path}: unreadable bundle description ({e.__class__.__name__}: {e})") from None
