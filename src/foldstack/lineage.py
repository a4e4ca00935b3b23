"""Which artifact folder a config reads or writes, resolved down the chain it is built on:

    folds -> train [+ round n's pseudo-label set] [+ a distillation teacher's predictions] -> predict -> stack
          -> round n+1's pseudo-label set (from the stack or an experiment of round n) -> ... -> submit

Every key hashes the config sections a stage reads and the keys of its inputs, so a folder names exactly what it
was built from. Manifests only: no torch.

Layering: a stage module (stages/<name>.py) imports library modules and this one, never another stage; stages
that chain whole stages (pseudo rounds, `make all`, sweeps) run them through foldstack.pipeline."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .artifacts import FORMAT, artifact_path, input_ref, is_complete, latest, read_manifest
from .config.loading import sections
from .errors import PipelineError
from .utils.io import read_csv, stable_hash

TRAIN_SECTIONS = ["competition", "model", "data", "mixup", "train", "loss"]


@dataclass(frozen=True)
class FoldSplit:
    """The split a config trains on: its folds/<comp>/<key>/ folder, key, and the fold of every train row."""
    path: Path
    key: str
    folds: np.ndarray


@dataclass(frozen=True)
class BuiltFrom:
    """A config's artifact folder (complete or not) and its inputs: {name: ref} of a models folder (folds, pseudo
    set, teacher), {experiment: prediction folder} of a stack."""
    path: Path
    inputs: dict


@dataclass(frozen=True)
class TrainedFolds:
    """A config's models folder with every fold trained, on the split `fold_key` (`folds`: fold per train row)."""
    path: Path
    fold_key: str
    folds: np.ndarray
    dirs: list


@dataclass(frozen=True)
class PredictDir:
    """A config's prediction folder (complete or not) and the trained folds it predicts with."""
    path: Path
    trained: TrainedFolds


def folds_dir(ctx) -> Path:
    """The split's folder; its key holds the artifact format, so every key built on it changes with it."""
    key = stable_hash({**sections(ctx.cfg, ["competition", "folds"]), "train": ctx.train.fingerprint(),
                       "format": FORMAT})
    return artifact_path(ctx.root, "folds", ctx.comp, key)


def load_folds(ctx) -> FoldSplit:
    """The split the current config asks for; it must be built."""
    path = folds_dir(ctx)
    if not is_complete(path):
        raise PipelineError(f"folds not built for this config ({path}): run `make folds COMP={ctx.comp}`")
    frame = read_csv(path / "folds.csv", "folds file")
    if frame["id"].tolist() != ctx.train.ids:
        raise PipelineError(f"{path / 'folds.csv'}: ids differ from {ctx.train.source}")
    return FoldSplit(path, read_manifest(path)["key"], frame["fold"].astype(int).to_numpy())


def with_round(ctx, n: int):
    """The same config at pseudo-label round n (0: trained on the train rows alone)."""
    return ctx if ctx.cfg.pseudo.round == n else ctx.derive(pseudo={"round": n})


def models_round(ctx, path) -> int:
    """The pseudo-label round of the models behind a prediction or stack folder."""
    manifest = read_manifest(path)
    if manifest["stage"] == "stack":
        return max(models_round(ctx, ctx.root / ref["path"]) for ref in manifest["inputs"].values())
    return int(read_manifest(ctx.root / manifest["inputs"]["train"]["path"] / "fold0").get("pseudo_round", 0))


@dataclass(frozen=True)
class PseudoSetDir:
    """Round n's pseudo-label set folder (complete or not) and the predictions folder it selects from."""
    path: Path
    source: Path


def pseudo_set_dir(ctx, n: int, fold_key: str) -> PseudoSetDir:
    """Round n's pseudo-label set. Its source is pseudo.source (the stack, or an experiment) at round n-1 and
    must be built on the folds this config trains on."""
    prev = with_round(ctx, n - 1)
    try:
        source = source_dir(prev, ctx.cfg.pseudo.source)
    except PipelineError as e:
        raise PipelineError(f"round {n} needs round {n - 1}'s {ctx.cfg.pseudo.source} ({e})") from None
    ref = input_ref(source, ctx.root)
    if ref["fold_key"] != fold_key:  # its OOF/stack was fitted on another split: training on it would leak
        raise PipelineError(f"pseudo.source {ref['path']} was built on folds {ref['fold_key']}, but this config "
                            f"trains on folds {fold_key}; rebuild the source on the same folds")
    key = stable_hash({"source": ref["key"], "pseudo": ctx.cfg.pseudo.selection()})
    return PseudoSetDir(artifact_path(ctx.root, "pseudo", ctx.comp, key, f"round{n}"), source)


def teacher_predictions(ctx, fold_key: str):
    """The distillation teacher's prediction folder (same round, same folds), or None without distill.teacher."""
    teacher = ctx.cfg.distill.teacher
    if teacher is None:
        return None
    if teacher == ctx.exp:
        raise PipelineError(f"distill.teacher={teacher}: an experiment cannot be its own teacher")
    if ctx.cfg.pseudo.round:
        raise PipelineError("distill.teacher with pseudo.round > 0 is not supported: the teacher's test "
                            "predictions already label the test rows (distil from a round's teacher instead)")
    path = experiment_predictions(ctx, teacher)
    ref = input_ref(path, ctx.root)
    if ref["fold_key"] != fold_key:  # its OOF rows would come from models that trained on them
        raise PipelineError(f"distill.teacher {teacher}: {ref['path']} was built on folds {ref['fold_key']}, but "
                            f"the student trains on folds {fold_key}; rebuild the teacher on the same folds")
    return path


def models_key_parts(ctx, fold_key: str, extra_sections: tuple = ()) -> dict:
    """What a model trained on `fold_key` is keyed by: the training sections (+ `extra_sections`), with
    model.pretrained replaced by the sha256 of the hub weights loaded (train_dir, lr_find)."""
    parts = {"folds": fold_key, **sections(ctx.cfg, TRAIN_SECTIONS + list(extra_sections))}
    parts["model"].pop("pretrained", None)
    if ctx.weights is not None:
        parts["weights"] = ctx.weights.sha256
    return parts


def train_dir(ctx, fold_key: str) -> BuiltFrom:
    """This config's models: the pseudo-label set and the teacher, when used, are inputs, so a round's or a
    student's models never share a folder with plain ones (the weights: see models_key_parts)."""
    cfg = ctx.cfg
    parts, inputs = models_key_parts(ctx, fold_key), {"folds": dict(key=fold_key)}
    if cfg.pseudo.round:
        set_path = pseudo_set_dir(ctx, cfg.pseudo.round, fold_key).path
        if not is_complete(set_path):
            raise PipelineError(f"round {cfg.pseudo.round}'s pseudo-label set is not built ({set_path}): run "
                                f"`make pseudo COMP={ctx.comp} ROUND={cfg.pseudo.round}`")
        inputs["pseudo"] = input_ref(set_path, ctx.root)
        parts["pseudo"] = dict(set=inputs["pseudo"]["key"], weight=cfg.pseudo.weight)
    teacher = teacher_predictions(ctx, fold_key)
    if teacher is not None:
        inputs["teacher"] = input_ref(teacher, ctx.root)
        parts["distill"] = dict(cfg.distill.model_dump(), teacher=inputs["teacher"]["key"])
    return BuiltFrom(artifact_path(ctx.root, "train", ctx.comp, stable_hash(parts), ctx.exp), inputs)


def fold_dirs(ctx) -> TrainedFolds:
    """The current config's models, every fold trained."""
    split = load_folds(ctx)
    fold_key, path = split.key, train_dir(ctx, split.key).path
    dirs = [path / f"fold{k}" for k in range(ctx.cfg.folds.n_splits)]
    missing = [k for k, d in enumerate(dirs) if not is_complete(d)]
    if missing:
        n = ctx.cfg.pseudo.round
        hint = f"make pseudo COMP={ctx.comp} ROUND={n}" if n else f"make train COMP={ctx.comp} EXP={ctx.exp}"
        raise PipelineError(f"fold(s) {missing} of {ctx.exp} not trained for this config ({path}): run `{hint}`")
    for d in dirs:
        if read_manifest(d)["fold_key"] != fold_key:
            raise PipelineError(f"{d} was trained on folds {read_manifest(d)['fold_key']}, not {fold_key}")
    return TrainedFolds(path, fold_key, split.folds, dirs)


def predict_dir(ctx) -> PredictDir:
    trained = fold_dirs(ctx)
    key = stable_hash({"train": trained.path.name, **sections(ctx.cfg, ["predict"])})
    return PredictDir(artifact_path(ctx.root, "predict", ctx.comp, key, ctx.exp), trained)


def experiment_predictions(ctx, name: str):
    """An experiment's prediction folder: this config's exact one for the current experiment, else the latest
    one whose models belong to this config's pseudo-label round."""
    n = ctx.cfg.pseudo.round
    if name == ctx.exp:
        path = predict_dir(ctx).path
    else:
        path = latest(ctx.root, "predict", ctx.comp, name, where=lambda p: models_round(ctx, p) == n)
    if path is None or not is_complete(path):
        hint = f"make pseudo COMP={ctx.comp} ROUND={n}" if n else f"make oof COMP={ctx.comp} EXP={name}"
        raise PipelineError(f"no OOF predictions for experiment {name!r}{f' at round {n}' if n else ''}: "
                            f"run `{hint}`")
    return path


def stack_dir(ctx) -> BuiltFrom:
    inputs = {name: experiment_predictions(ctx, name) for name in ctx.cfg.stack.experiments or [ctx.exp]}
    key = stable_hash({"inputs": {n: read_manifest(p)["key"] for n, p in inputs.items()},
                       **sections(ctx.cfg, ["stack"])})
    return BuiltFrom(artifact_path(ctx.root, "stack", ctx.comp, key), inputs)


def source_dir(ctx, source: str):
    """A level's predictions folder: `stack` (the stack for this config) or an experiment name."""
    if source != "stack":
        return experiment_predictions(ctx, source)
    path = stack_dir(ctx).path
    if not is_complete(path):
        raise PipelineError(f"no stack for this config ({path}): run `make stack COMP={ctx.comp}`")
    return path


def latest_round(ctx, source: str) -> int:
    """The last pseudo-label round whose `source` (stack or experiment) is built, counting up from round 0."""
    n = 0
    while True:
        try:
            source_dir(with_round(ctx, n + 1), source)
        except PipelineError:
            return n
        n += 1


def submission_source(ctx) -> tuple[int, Path]:
    """(round, predictions folder) a submission is made from: submit.source (the stack or an experiment) at
    submit.round, by default the latest round whose source is built."""
    sub_cfg = ctx.cfg.submit
    n = latest_round(ctx, sub_cfg.source) if sub_cfg.round is None else sub_cfg.round
    return n, source_dir(with_round(ctx, n), sub_cfg.source)


def submit_dir(ctx, source: Path) -> Path:
    """The submission folder of a level's predictions (`source_dir`) under this config."""
    key = stable_hash({"source": read_manifest(source)["key"],
                       **sections(ctx.cfg, ["competition", "stack", "submit"])})
    return artifact_path(ctx.root, "submit", ctx.comp, key)
