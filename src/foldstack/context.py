"""What every stage gets: the resolved config, the competition's tables and where artifacts live."""
import argparse
import logging
import os
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path

from .artifacts import stage_root
from .config.files import competition_file, experiment_file
from .config.loading import check_across_sections, deep_merge, parse_overrides, read_yaml, resolve, validate
from .config.schema import Config
from .data.table import Table, class_index, encode_targets, load_test, load_train
from .wide import ClassTargets, keep_top
from .discover import write_competition_config
from .errors import PipelineError

log = logging.getLogger("foldstack")


def config_layers(root: Path, comp: str, exp: str, overrides: list[str], infer: bool = True,
                  layer: dict | None = None) -> list[tuple[str, dict]]:
    """[(source, layer)]: configs/<comp>.yaml (inferred from input/<comp>/ on first use unless not `infer`),
    configs/exp/<exp>.yaml (or `layer`: the experiment's layer before its file is written, `make plan`'s race),
    the overrides."""
    root = Path(root)
    comp_path, exp_path = competition_file(root, comp), experiment_file(root, exp)
    if layer is None and not exp_path.is_file() and exp != "baseline":
        raise PipelineError(f"experiment config not found: {exp_path}")
    exp_layer = layer if layer is not None else read_yaml(exp_path) if exp_path.is_file() else {}
    override_layer = parse_overrides(overrides) if overrides else {}
    if not comp_path.is_file() and infer:
        input_dir = Path("input") / comp
        # The one key discovery itself reads: rows with an empty target are refused unless dropped on purpose.
        drop = validate(override_layer, "overrides").competition.drop_unlabeled
        write_competition_config(comp_path, root / input_dir, shown_as=input_dir, drop_unlabeled=drop)
        log.info(f"inferred the competition setup from {input_dir} -> {comp_path} (edit it to change)")
    layers = [(str(comp_path), read_yaml(comp_path))] if comp_path.is_file() else []
    if layer is not None or exp_path.is_file():
        layers.append((str(exp_path), exp_layer))
    if overrides:
        layers.append(("overrides", override_layer))
    return layers


def load_config(root: Path, comp: str, exp: str, overrides: list[str], download: bool = False,
                layer: dict | None = None) -> Config:
    """defaults < configs/<comp>.yaml (inferred on first use) < configs/exp/<exp>.yaml < overrides; with hub
    weights (model.pretrained), the model's data config for the `data` keys no layer set. `download`: fetch the
    weights into weights/ when missing (the training stages); other stages read the cache only."""
    layers = config_layers(root, comp, exp, overrides, layer=layer)
    return with_pretrained_data(resolve(layers), layers, Path(root), download)


def with_pretrained_data(cfg: Config, layers: list[tuple[str, dict]], root: Path, download: bool) -> Config:
    """cfg with the hub weights' data config (models.hub.data_defaults) for each `data` key no layer set,
    validated and checked like any merged config."""
    if not hub_lookup_needed(cfg.model, root, download):
        return cfg
    from .models.hub import data_defaults, find_weights

    try:
        weights = find_weights(cfg.model, root, download)
    except PipelineError:
        if download:
            raise
        return cfg  # pretrained=true without weights: the stages that need them stop at Context.weights
    if weights is None:
        return cfg
    unset = {k: v for k, v in data_defaults(weights.data_config).items() if k not in cfg.data.model_fields_set}
    if not unset:
        return cfg
    merged = reduce(deep_merge, [data for _, data in layers] + [{"data": unset}], {})
    cfg = validate(merged, f"the data config of {weights.repo_id} (model.pretrained)")
    check_across_sections(cfg)
    return cfg


def hub_lookup_needed(model, root: Path, download: bool) -> bool:
    """Whether finding the hub weights needs models.hub (torch and timm: seconds a stage without a model should not
    pay): not for pretrained=false or a pretrained_path, nor `auto` with weights/ empty and nothing to download."""
    if model.pretrained is False or model.pretrained_path:
        return False
    folder = stage_root(root, "weights")
    cached = folder.is_dir() and any(p.name.startswith("models--") for p in folder.iterdir())
    offline = os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}
    return model.pretrained is True or cached or (download and not offline)


@dataclass
class Context:
    root: Path
    comp: str
    exp: str
    cfg: Config
    fold: int | None = None
    args: argparse.Namespace = field(default_factory=argparse.Namespace)
    download: bool = False  # may fetch pretrained weights (the training stages); `derive` hands it on
    # What is read once, on first use: "train", "test", "targets", "images", "weights". `derive` hands them on.
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
    def keep_top(self) -> int:
        """Classes each prediction keeps (predict.keep_top resolved, wide.py); 0: every class."""
        return self._once("keep_top", lambda: keep_top(self.cfg.competition, self.cfg.predict, len(self.train)))

    @property
    def targets(self):
        """(N, K) targets; with keep_top, ClassTargets (class indices standing for the one-hot)."""
        comp = self.cfg.competition
        if self.keep_top:
            return self._once("targets", lambda: ClassTargets(class_index(self.train, comp), len(comp.classes)))
        return self._once("targets", lambda: encode_targets(self.train, comp))

    @property
    def images(self):
        """Train then test images (data.images.ImageStore), from the decoded-image cache (built on first use)
        unless runtime.cache is off."""
        def build():
            from .data.cache import image_store  # torch/OpenCV: only for stages that read images
            from .engine.runtime import decode_workers

            store = image_store(self, decode_workers(self.cfg))
            if self.cfg.model.meta_head:  # each row's encoded tabular columns too: the network's second input
                from .models.meta_head import store_meta

                store.meta = store_meta(self)
            return store

        return self._once("images", build)

    @property
    def weights(self):
        """The hub weights this config trains from (models.hub.Weights), or None (model.pretrained=false, a
        pretrained_path, or `auto` without them). Never downloads: load_config did, for the training stages.
        model.pretrained=true without them: PipelineError naming `make weights`."""
        def build():
            if not hub_lookup_needed(self.cfg.model, self.root, download=False):
                return None
            from .models.hub import find_weights

            return find_weights(self.cfg.model, self.root, download=False)

        return self._once("weights", build)

    def shared_with(self, cfg: Config) -> tuple[str, ...]:
        """What a context of `cfg` may take from this one without reading it again: the tables under the same
        competition section, and the images too when the store's side, resampling and cache setting agree."""
        from .config.training import cache_side

        if cfg.competition != self.cfg.competition:
            return ()
        store = lambda c: (cache_side(c.data), c.data.interpolation, c.runtime.cache, c.model.meta_head)  # noqa: E731
        return ("train", "test", "targets") + (("images",) if store(cfg) == store(self.cfg) else ())

    def derive(self, exp: str | None = None, **updates: dict) -> "Context":
        """This competition under another experiment (its own config file, the same command-line overrides)
        and/or with config keys changed (`derive(pseudo={"round": 2})`). The tables are shared, not re-read."""
        cfg = self.cfg if exp in (None, self.exp) else load_config(self.root, self.comp, exp,
                                                                  getattr(self.args, "set", []), self.download)
        for name, values in updates.items():  # copied, not re-validated from a dump: hashes see the same values
            section = getattr(cfg, name)
            validate({name: {**section.model_dump(), **values}}, f"derived config {name}: {values}")
            cfg = cfg.model_copy(update={name: section.model_copy(update=values)})
        other = Context(self.root, self.comp, exp or self.exp, cfg, self.fold, self.args, self.download)
        other._loaded.update({name: self._loaded[name] for name in self.shared_with(cfg) if name in self._loaded})
        return other
