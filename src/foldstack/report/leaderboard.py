"""The leaderboard: one row per level on disk, scored as `make stack` scores its levels (stacking.report).

Experiment rows (and their "(no TTA)" variants) are scored from their OOF matrices on their own folds; blend and
stacker rows are the stack's report.csv rows (its levels' OOF matrices are not kept, the CVs are). The config
keys where a level differs from `baseline` (configs/exp/baseline.yaml resolved with the same overrides) are
listed as dotted keys; a key the manifest does not hold (written before the key existed) is not compared."""
import json

import numpy as np
import pandas as pd

from ..config.loading import sections
from ..metrics import HIGHER_IS_BETTER
from ..stacking.report import level_report

SUBMITTED = "*"
FIRST = ["level", "kind", "round", "submitted", "cv", "mean", "std"]
LAST = ["train_s", "params_M", "images_per_s", "config_diff", "source"]


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"train": {"lr": 1}} -> {"train.lr": 1}; an empty dict stays a value."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def as_json(value):
    """As a manifest stores it (tuples are lists, paths strings), so equal settings compare equal."""
    return json.loads(json.dumps(value, default=str))


def config_diff(config: dict, baseline_cfg) -> dict:
    """{dotted key: (value, baseline's value)} for the keys of the manifest's sections that differ."""
    base = flatten(as_json(sections(baseline_cfg, [n for n in config if hasattr(baseline_cfg, n)])))
    missing = object()
    return {key: (value, base.get(key)) for key, value in flatten(as_json(config)).items()
            if base.get(key, missing) != value}


def format_diff(diff: dict) -> str:
    return "; ".join(f"{key}={value if isinstance(value, str) else json.dumps(value)}"
                     for key, (value, _) in sorted(diff.items()))


def experiment_levels(exp, y: np.ndarray, comp, submitted: str, baseline_cfg) -> pd.DataFrame:
    """The experiment's level(s): with TTA (its predictions) and, when TTA was on, without (the identity view)."""
    p, kind = exp.preds, f"student of {exp.teacher}" if exp.teacher else "single model"
    levels = {}
    if p.oof_plain is not None:
        levels[exp.variant("no TTA")] = (kind, p.oof_plain, p.test_plain)
        kind += " + TTA"
    levels[exp.label] = (kind, p.oof, p.test)
    info = {name: exp.manifest.get("metrics", {}) for name in levels}
    rows = level_report(levels, y, p.folds, comp, submitted, info=info)
    rows["train_s"] = exp.train_seconds
    rows["config_diff"] = format_diff(config_diff(exp.config, baseline_cfg))
    return rows


def stack_levels(stack, label_suffix: str, submitted: bool, baseline_cfg) -> pd.DataFrame:
    """A stack's blend and stacker rows of its report.csv (its single-model rows are the experiments' own)."""
    report = stack.levels
    kinds = report["kind"]
    rows = report[(kinds == "blend") | kinds.str.startswith("stack")].copy()
    for column in rows.columns.drop(["level", "kind", "output"]):
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
    output = stack.manifest.get("output")
    rows["output"] = [SUBMITTED if submitted and level == output else "" for level in rows["level"]]
    rows["page"] = [stack.slug if level == output else "" for level in rows["level"]]
    rows["level"] = rows["level"] + label_suffix
    rows["config_diff"] = format_diff(config_diff(stack.manifest.get("config", {}), baseline_cfg))
    return rows


def leaderboard(disk, ctx, baseline_cfg) -> pd.DataFrame:
    """Every level, best pooled OOF CV first; `submitted` marks the level `make submit` would submit."""
    comp, y, root = ctx.cfg.competition, ctx.targets, ctx.root
    parts = []
    for exp in disk.experiments:
        submitted = exp.label if exp.path == disk.submitted else ""
        rows = experiment_levels(exp, y, comp, submitted, baseline_cfg)
        rows["round"], rows["source"], rows["page"] = exp.round, str(exp.path.relative_to(root)), exp.slug
        parts.append(rows)
    per_round = pd.Series([s.round for s in disk.stacks], dtype=object).value_counts(dropna=False)
    for stack in disk.stacks:
        suffix = "" if stack.round == 0 else f" (round {'?' if stack.round is None else stack.round})"
        if per_round[stack.round] > 1:  # several stacks of one round: name each by its folder
            suffix += f" [{stack.path.name}]"
        rows = stack_levels(stack, suffix, stack.path == disk.submitted, baseline_cfg)
        rows["round"], rows["source"] = stack.round, str(stack.path.relative_to(root))
        parts.append(rows)
    board = pd.concat(parts, ignore_index=True).rename(columns={"output": "submitted"})
    folds = sorted((c for c in board.columns if c.startswith("fold_")), key=lambda c: int(c[5:]))
    extra = [c for c in board.columns if c not in FIRST + LAST + folds + ["page"]]  # cv_tuned_thresholds
    board = board.reindex(columns=FIRST + folds + extra + LAST + ["page"])  # a missing LAST column: NaN
    board["submitted"] = board["submitted"].fillna("")
    board["round"] = board["round"].astype("Int64")  # an integer column even where a round is unknown
    ascending = not HIGHER_IS_BETTER[comp.metric]
    return board.sort_values("cv", ascending=ascending, kind="stable", na_position="last").reset_index(drop=True)
