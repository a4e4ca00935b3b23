"""Layers of YAML and overrides merged and validated into a Config, with errors that name their source."""
from pathlib import Path

import yaml
from pydantic import ValidationError

from ..errors import PipelineError
from ..ordinal import check_ordinal
from .schema import Config
from .training import cache_side, eval_side


def _validation_message(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
    got = first.get("input")
    got = "" if isinstance(got, dict) or first["type"] == "missing" else f" (got {got!r})"
    return f"config error in {source}: {key}: {msg}{got}"


def validate(data: dict, source: str) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise PipelineError(_validation_message(e, source)) from None


def deep_merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise PipelineError(f"{path}: invalid YAML{where}: {getattr(e, 'problem', e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def split_overrides(text: str) -> list[str]:
    """'a.b=1 c.d=[x, y]' -> ['a.b=1', 'c.d=[x, y]']: split on whitespace outside brackets, braces and quotes
    (make passes OVERRIDES as one argument, so a YAML list with spaces stays one value)."""
    items, current, depth, quote = [], "", 0, None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth = max(depth - 1, 0)
        elif ch.isspace() and depth == 0:
            if current:
                items.append(current)
            current = ""
            continue
        current += ch
    if quote or depth:
        raise PipelineError(f"override {text.strip()!r}: unbalanced {'quote' if quote else 'bracket'}")
    return items + ([current] if current else [])


def parse_overrides(items: list[str]) -> dict:
    """['train.epochs=3', 'predict.tta=[]'] -> nested dict; values parsed as YAML scalars/lists. Each item may
    hold several space-separated overrides (see `split_overrides`)."""
    out: dict = {}
    for item in (one for text in items for one in split_overrides(text)):
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise PipelineError(f"override {item!r}: expected section.key=value")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        put_dotted(out, key, value, f"override {item!r}")
    return out


def put_dotted(tree: dict, key: str, value, source: str) -> None:
    """tree["train"]["lr"] = value for key "train.lr", making the sections on the way."""
    node = tree
    *parents, leaf = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise PipelineError(f"{source}: {p} is not a section")
    node[leaf] = value


def nested(values: dict, source: str = "config") -> dict:
    """{"train.lr": 0.1} -> {"train": {"lr": 0.1}}: dotted keys as a config layer."""
    out: dict = {}
    for key, value in values.items():
        put_dotted(out, key, value, source)
    return out


def check_across_sections(cfg: Config) -> None:
    """Rules that tie keys of several sections (or layers) together, checked on the merged config so that
    nothing fails after hours of training for a value known to be wrong from the start."""
    p, size = cfg.predict, cfg.data.img_size
    check_ordinal(cfg.competition)
    if cfg.model.meta_head and not cfg.competition.tabular_cols:
        raise PipelineError(f"model.meta_head={cfg.model.meta_head} feeds competition.tabular_cols to the network, "
                            f"and this competition has none (no column of the train table but id/target/group is "
                            f"also in the test rows' table): set model.meta_head to 0")
    if cfg.competition.task == "regression" and (cfg.distill.teacher or cfg.pseudo.round):
        raise PipelineError("distill.teacher / pseudo.round: not for regression yet (their soft labels are class "
                            "probabilities); unset them")
    if {"five_crop", "ten_crop"} & set(p.tta) and round(size / p.tta_crop_fraction) == size:
        raise PipelineError(f"predict.tta_crop_fraction={p.tta_crop_fraction} at data.img_size={size} makes every "
                            f"five/ten_crop view the whole image (round({size} / {p.tta_crop_fraction}) = {size}); "
                            f"use a smaller fraction")

    d = cfg.data
    if isinstance(d.cache_size, int) and d.cache_size < size:
        raise PipelineError(f"data.cache_size={d.cache_size} is below data.img_size={size}: the cache keeps at least "
                            f"img_size pixels a side (a number of pixels >= {size}, or a multiple >= 1.0 as a float)")
    if isinstance(d.cache_size, float) and not 1 <= d.cache_size <= 4:
        raise PipelineError(f"data.cache_size={d.cache_size} is a multiple of data.img_size={size} (a float), "
                            f"{'below 1' if d.cache_size < 1 else 'above 4'}: use a multiple from 1.0 to 4.0, or a "
                            f"number of pixels (an int, e.g. {max(size, round(d.cache_size))})")
    if eval_side(d) > cache_side(d):
        raise PipelineError(f"data.crop_pct={d.crop_pct} resizes evaluation images to round({size} / {d.crop_pct}) = "
                            f"{eval_side(d)} px, more than the cache keeps ({cache_side(d)} px, data.cache_size="
                            f"{d.cache_size}): set data.cache_size >= {eval_side(d)} or unset it")
    (s_lo, s_hi), (r_lo, r_hi) = d.rrc_scale, d.rrc_ratio
    if not 0 < s_lo <= s_hi <= 1:
        raise PipelineError(f"data.rrc_scale={d.rrc_scale}: expected [min, max] shares of the image's area with "
                            f"0 < min <= max <= 1")
    if not 0 < r_lo <= r_hi:
        raise PipelineError(f"data.rrc_ratio={d.rrc_ratio}: expected [min, max] aspect ratios (width / height) with "
                            f"0 < min <= max")


def resolve(layers: list[tuple[str, dict]]) -> Config:
    """Validate each (source, dict) layer alone, then merge them in order over the defaults."""
    merged: dict = {}
    for source, data in layers:
        validate(data, source)
        merged = deep_merge(merged, data)
    cfg = validate(merged, "merged config")
    check_across_sections(cfg)
    return cfg


def sections(cfg: Config, names) -> dict:
    return {n: getattr(cfg, n).model_dump() for n in names}
