"""What every stage gets: the resolved config, the competition's tables and where artifacts live."""
import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config, parse_overrides, read_yaml, resolve, validate
from .data.table import Table, encode_targets, load_test, load_train
from .discover import write_competition_config
from .errors import PipelineError

log = logging.getLogger("foldstack")


def load_config(root: Path, comp: str, exp: str, overrides: list[str]) -> Config:
    """defaults < configs/<comp>.yaml (inferred on first use) < configs/exp/<exp>.yaml < overrides."""
    root = Path(root)
    comp_path = root / "configs" / f"{comp}.yaml"
    exp_path = root / "configs" / "exp" / f"{exp}.yaml"
    if not exp_path.is_file() and exp != "baseline":
        raise PipelineError(f"experiment config not found: {exp_path}")
    exp_layer = read_yaml(exp_path) if exp_path.is_file() else {}
    override_layer = parse_overrides(overrides) if overrides else {}
    if not comp_path.is_file():
        input_dir = Path("input") / comp
        # The one key discovery itself reads: rows with an empty target are refused unless dropped on purpose.
        drop = validate(override_layer, "overrides").competition.drop_unlabeled
        write_competition_config(comp_path, root / input_dir, shown_as=input_dir, drop_unlabeled=drop)
        log.info(f"inferred the competition setup from {input_dir} -> {comp_path} (edit it to change)")
    layers = [(str(comp_path), read_yaml(comp_path))]
    if exp_path.is_file():
        layers.append((str(exp_path), exp_layer))
    if overrides:
        layers.append(("overrides", override_layer))
    return resolve(layers)


@dataclass
class Context:
    root: Path
    comp: str
    exp: str
    cfg: Config
    fold: int | None = None
    args: argparse.Namespace = field(default_factory=argparse.Namespace)
    # What is read once, on first use: "train", "test", "targets", "images". `derive` hands them on.
    _loaded: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _once(self, name: str, build):
        if name not in self._loaded:
            self._loaded[name] = build()
        return self._loaded[name]

    @property
    def train(self) -> Table:
        return self._once("train", lambda: load_train(self.cfg.competition, self.root, self.comp))

    @property
    def test(self) -> Table:
        return self._once("test", lambda: load_test(self.cfg.competition, self.root, self.comp))

    @property
    def targets(self):
        return self._once("targets", lambda: encode_targets(self.train, self.cfg.competition))

    @property
    def images(self):
        """Train then test images (data.images.ImageStore), from the decoded-image cache (built on first use)
        unless runtime.cache is off."""
        def build():
            from .data.cache import image_store  # torch/OpenCV: only for stages that read images

            return image_store(self)

        return self._once("images", build)

    def shared_with(self, cfg: Config) -> tuple[str, ...]:
        """What a context of `cfg` may take from this one without reading it again: the tables under the same
        competition section, and the images too when their size and cache setting agree."""
        if cfg.competition != self.cfg.competition:
            return ()
        same_images = (cfg.data.img_size, cfg.runtime.cache) == (self.cfg.data.img_size, self.cfg.runtime.cache)
        return ("train", "test", "targets") + (("images",) if same_images else ())

    def derive(self, exp: str | None = None, **updates: dict) -> "Context":
        """This competition under another experiment (its own config file, the same command-line overrides)
        and/or with config keys changed (`derive(pseudo={"round": 2})`). The tables are shared, not re-read."""
        cfg = self.cfg if exp in (None, self.exp) else load_config(self.root, self.comp, exp,
                                                                  getattr(self.args, "set", []))
        for name, values in updates.items():  # copied, not re-validated from a dump: hashes see the same values
            section = getattr(cfg, name)
            validate({name: {**section.model_dump(), **values}}, f"derived config {name}: {values}")
            cfg = cfg.model_copy(update={name: section.model_copy(update=values)})
        other = Context(self.root, self.comp, exp or self.exp, cfg, self.fold, self.args)
        other._loaded.update({name: self._loaded[name] for name in self.shared_with(cfg) if name in self._loaded})
        return other
