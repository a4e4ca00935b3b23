"""Where the config layers live (configs/<comp>.yaml, configs/exp/<exp>.yaml) and the one writer of the
experiments the pipeline generates (`make plan`'s budget plans, `make sweep`'s trials)."""
from pathlib import Path

import yaml

from ..utils.io import atomic_write_text

CONFIGS = "configs"
EXPERIMENTS = "exp"


def competition_file(root: Path, comp: str) -> Path:
    return Path(root, CONFIGS, f"{comp}.yaml")


def experiment_file(root: Path, exp: str) -> Path:
    return Path(root, CONFIGS, EXPERIMENTS, f"{exp}.yaml")


def experiment_names(root: Path) -> list[str]:
    """The experiments configs/exp/ defines, sorted (`baseline` needs no file)."""
    folder = Path(root, CONFIGS, EXPERIMENTS)
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def write_experiment(root: Path, name: str, layer: dict, header: list[str]) -> Path:
    """configs/exp/<name>.yaml: `header` as comment lines, then the layer; written only when the text changes
    (so a rerun that generates the same experiment leaves the file, and its time stamp, alone)."""
    path = experiment_file(root, name)
    text = "".join(f"# {line}\n" for line in header) + yaml.safe_dump(layer, sort_keys=False)
    if not path.is_file() or path.read_text() != text:
        atomic_write_text(path, text)
    return path
