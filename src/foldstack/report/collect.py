"""What a report is built from: the competition's artifacts on disk, read through their manifests.

Shown: for each experiment and pseudo-label round, its latest prediction folder (as lineage.py picks an
experiment's predictions); every stack built on those folders; every pseudo-label set. Folders left out (older
versions, predictions made for other train/test rows) are counted in `notes`. No torch."""
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..artifacts import is_complete, read_manifest
from ..errors import PipelineError
from ..predictions import Predictions, load_predictions, rows_record
from ..utils.io import read_csv


@dataclass
class Experiment:
    """One experiment's predictions at one pseudo-label round, and the fold models that made them."""
    name: str
    round: int | None           # None: its models are gone, and with them the record of their round
    path: Path                  # oof/<comp>/<exp>/<key>/
    manifest: dict
    preds: Predictions
    fold_manifests: list        # models/<comp>/<exp>/<key>/fold<k>/manifest.json, k = 0.. ([]: models removed)
    logs: list                  # their log.csv (epoch, train_loss, valid_loss, <metric>, lr, seconds)

    def variant(self, *tags: str) -> str:
        """Its leaderboard name: `baseline`, `baseline (no TTA)`, `baseline (round 1, no TTA)`."""
        parts = ([] if self.round == 0 else [f"round {'?' if self.round is None else self.round}"]) + list(tags)
        return self.name + (f" ({', '.join(parts)})" if parts else "")

    @property
    def label(self) -> str:
        return self.variant()

    @property
    def slug(self) -> str:
        """Its page's folder under reports/<comp>/."""
        return re.sub(r"[^\w.-]+", "_", self.name) + ("" if self.round == 0 else f"-round{self.round or '_unknown'}")

    @property
    def fold0(self) -> dict:
        return self.fold_manifests[0] if self.fold_manifests else {}

    @property
    def config(self) -> dict:
        """The resolved config sections its models and predictions were made with."""
        return {**self.fold0.get("config", {}), **self.manifest.get("config", {})}

    @property
    def teacher(self) -> str | None:
        """The distillation teacher's experiment, when this experiment is a student."""
        if "teacher" not in self.fold0.get("inputs", {}):
            return None
        return self.fold0["config"]["distill"]["teacher"]

    @property
    def train_seconds(self) -> float:
        """Wall time of every logged epoch of every fold (validation included); NaN without the models."""
        return float(sum(log["seconds"].sum() for log in self.logs)) if self.logs else float("nan")


@dataclass
class Stack:
    path: Path                  # stacks/<comp>/<key>/
    manifest: dict
    round: int | None
    levels: pd.DataFrame        # its report.csv
    preds: Predictions          # the output level's

    @property
    def slug(self) -> str:
        """Its output level's page folder under reports/<comp>/."""
        return f"stack-{self.path.name}"


@dataclass
class PseudoSet:
    path: Path                  # pseudo/<comp>/round<n>/<key>/
    round: int
    manifest: dict


@dataclass
class OnDisk:
    experiments: list
    stacks: list
    pseudo_sets: list
    submitted: Path | None      # the predictions folder `make submit` would submit from
    submit_note: str            # why none is marked, when none is
    notes: list = field(default_factory=list)


def complete_folders(ctx, stage: str, depth: int) -> list[Path]:
    """Complete artifact folders of a stage, `depth` levels below <stage dir>/<comp>/ (as the audit lists them)."""
    from ..audit.auditor import Auditor

    return Auditor(ctx).complete(stage, depth)


def read_experiment(ctx, path: Path, round_: int | None) -> Experiment:
    manifest = read_manifest(path)
    preds = load_predictions(path, ctx.train.ids, ctx.test.ids, ctx.targets.shape[1])
    models = ctx.root / manifest["inputs"]["train"]["path"]
    dirs = [models / f"fold{k}" for k in range(int(preds.folds.max()) + 1)]
    if not all(is_complete(d) for d in dirs):  # models removed to save disk: the predictions still report
        dirs = []
    logs = [read_csv(d / "log.csv", "training log").apply(pd.to_numeric, errors="coerce") for d in dirs]
    return Experiment(manifest.get("experiment", path.parent.name), round_, path, manifest, preds,
                      [read_manifest(d) for d in dirs], logs)


def collect(ctx, round_of, submitted: Path | None = None, submit_note: str = "") -> OnDisk:
    """round_of(folder): the pseudo-label round of the models behind a predictions or stack folder
    (lineage.models_round), None when they are gone; submitted: the folder `make submit` would submit from,
    always shown."""
    root, comp = ctx.root, ctx.comp
    predictions = complete_folders(ctx, "predict", 2)
    rows = rows_record(ctx.train.ids, ctx.test.ids)
    current = [p for p in predictions if read_manifest(p).get("rows", {}) == rows]  # made for the current rows
    latest: dict[tuple, tuple] = {}  # (experiment, round) -> (created_ns, folder)
    for path in current:
        group = (path.parent.name, round_of(path))
        created = float("inf") if path == submitted else read_manifest(path).get("created_ns", 0)
        if group not in latest or created > latest[group][0]:
            latest[group] = (created, path)
    shown = {path: group[1] for group, (_, path) in latest.items()}
    if not shown:
        raise PipelineError(f"nothing to report: no OOF predictions for the current train rows in "
                            f"{root / 'oof' / comp} (run `make oof COMP={comp}`)")
    experiments = sorted((read_experiment(ctx, p, r) for p, r in shown.items()),
                         key=lambda e: (-1 if e.round is None else e.round, e.name))
    without_models = [e.label for e in experiments if not e.logs]
    stacks, stacks_left_out = [], 0
    for path in complete_folders(ctx, "stack", 1):
        manifest = read_manifest(path)
        inputs = {root / ref["path"] for ref in manifest.get("inputs", {}).values()}
        if path != submitted and not inputs <= set(shown):
            stacks_left_out += 1  # built on predictions not shown (older versions, other rows)
            continue
        preds = load_predictions(path, ctx.train.ids, ctx.test.ids, ctx.targets.shape[1])
        levels = read_csv(path / "report.csv", "stack report")
        round_ = manifest["pseudo_round"] if "pseudo_round" in manifest else round_of(path)
        stacks.append(Stack(path, manifest, round_, levels, preds))
    stacks.sort(key=lambda s: (-1 if s.round is None else s.round, s.manifest.get("created_ns", 0)))

    pseudo_sets = []
    for path in complete_folders(ctx, "pseudo", 2):
        if not path.parent.name.startswith("round"):
            continue
        manifest = read_manifest(path)
        pseudo_sets.append(PseudoSet(path, int(manifest.get("round", path.parent.name[len("round"):])), manifest))

    left_out = {"older prediction folder(s) of the same experiment and round": len(current) - len(shown),
                "prediction folder(s) made for other train/test rows": len(predictions) - len(current),
                "stack(s) built on other predictions": stacks_left_out}
    notes = [f"{n} {what}: not shown" for what, n in left_out.items() if n]
    if without_models:
        notes.append(f"models no longer on disk (no training curves, time or config): {', '.join(without_models)}")
    return OnDisk(experiments, stacks, pseudo_sets, submitted, submit_note, notes)
