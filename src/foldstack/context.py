"""What every stage gets: the resolved config, the competition's tables and where artifacts live."""
import argparse
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .config import Config, parse_overrides, read_yaml, resolve
from .data.table import Table, encode_targets, load_test, load_train
from .errors import PipelineError
from .infer import write_competition_config

log = logging.getLogger("foldstack")


def load_config(root: Path, comp: str, exp: str, overrides: list[str]) -> Config:
    """defaults < configs/<comp>.yaml (inferred on first use) < configs/exp/<exp>.yaml < overrides."""
    root = Path(root)
    comp_path = root / "configs" / f"{comp}.yaml"
    if not comp_path.is_file():
        input_dir = Path("input") / comp
        write_competition_config(comp_path, root / input_dir, shown_as=input_dir)
        log.info(f"inferred the competition setup from {input_dir} -> {comp_path} (edit it to change)")
    layers = [(str(comp_path), read_yaml(comp_path))]
    exp_path = root / "configs" / "exp" / f"{exp}.yaml"
    if exp_path.is_file():
        layers.append((str(exp_path), read_yaml(exp_path)))
    elif exp != "baseline":
        raise PipelineError(f"experiment config not found: {exp_path}")
    if overrides:
        layers.append(("overrides", parse_overrides(overrides)))
    return resolve(layers)


@dataclass
class Context:
    root: Path
    comp: str
    exp: str
    cfg: Config
    fold: int | None = None
    args: argparse.Namespace = field(default_factory=argparse.Namespace)

    @cached_property
    def train(self) -> Table:
        return load_train(self.cfg.competition, self.root, self.comp)

    @cached_property
    def test(self) -> Table:
        return load_test(self.cfg.competition, self.root, self.comp)

    @cached_property
    def targets(self):
        return encode_targets(self.train, self.cfg.competition)
