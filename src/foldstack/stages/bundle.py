"""`make bundle`: what the submission uses, as a Kaggle dataset plus a kernel that rebuilds the submission offline.

The source is resolved as `make submit` resolves it, so the bundle holds exactly what the submission was made
from: each input experiment's fold weights (predict.checkpoint) and resolved config, refused unless that config
still resolves to the source's prediction folder; a stack's fitted level 2 and thresholds; the project's wheel
and the pinned wheels inference needs (torch and torchvision come from Kaggle's image).

Writes bundle/<comp>/<key>/ (dataset/, kernel/, manifest.json; layout: bundle/layout.py) and prints it. The key
hashes the source, the config sections, the project's sources, the pins, the target and the Kaggle ids: a rerun
finds the same folder and rebuilds nothing."""
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from ..artifacts import artifact_path, input_ref, is_complete, read_manifest, stage_root, staging, write_manifest
from ..config.loading import sections
from ..data.table import output_names
from ..errors import PipelineError
from ..lineage import predict_dir, submission_source, with_round
from ..predictions import load_predictions
from ..wide import refuse_dense
from ..stacking.thresholds import level_thresholds
from ..utils.io import atomic_copy, atomic_write_json, atomic_write_text, stable_hash

log = logging.getLogger("foldstack")

FORMAT = 1


def add_arguments(p) -> None:
    p.add_argument("--kaggle-user", help="owner of the dataset and kernel ids (default: the Kaggle credentials' user)")
    p.add_argument("--dataset-id", help="the Kaggle dataset, <user>/<slug> (default: <user>/<comp>-<hash>)")
    p.add_argument("--kernel-id", help="the Kaggle kernel, <user>/<slug> (default: <user>/<comp>-<hash>-kernel)")
    p.add_argument("--competition", help="the Kaggle competition's slug, the kernel's input (default: --comp)")
    p.add_argument("--gpu", action="store_true", help="the kernel runs with a GPU (kernel-metadata enable_gpu)")
    p.add_argument("--python-version", help="Python X.Y of the kernel's image, for the wheels (default: this one)")
    p.add_argument("--platform", help="pip platform tag of the kernel's image, e.g. manylinux2014_x86_64 (default: "
                                      "this machine's)")
    p.add_argument("--wheel-cache", help="where downloaded wheels are kept between bundles (default: bundle/.wheels)")


def experiment_folds(ctx, name: str, n: int, path: Path):
    """(the experiment's config at round n, its trained fold folders), checked to be what predicted `path`."""
    ctx_e = with_round(ctx if name == ctx.exp else ctx.derive(exp=name), n)
    target = predict_dir(ctx_e)  # every fold trained, else one line naming the missing folds
    if target.path.resolve() != Path(path).resolve():
        raise PipelineError(f"{name}: {path.relative_to(ctx.root)} was not predicted with the config "
                            f"configs/exp/{name}.yaml resolves to now ({target.path.relative_to(ctx.root)}): "
                            f"rebuild the source (make oof/stack/submit) or restore the config")
    if read_manifest(path)["metrics"].get("fold_weights"):  # the kernel averages its folds alike, as `keep` does
        raise PipelineError(f"{name}: {path.relative_to(ctx.root)} weights its folds (predict.fold_outlier=weight), "
                            f"which a bundle's kernel does not yet: bundle it with predict.fold_outlier=keep")
    from ..models.meta_head import refuse_meta_head

    refuse_meta_head(ctx_e.cfg, f"{name}: a bundle (its kernel encodes no tabular column)")
    if ctx_e.keep_top:  # the kernel's test predictions are dense: (test rows x classes) is what keep_top avoids
        refuse_dense(f"{name}: a bundle (its kernel predicts a dense test matrix)")
    return ctx_e.cfg, target.trained.dirs


def copy_level2(ctx, source: Path, folder: Path) -> dict:
    """The stack's fitted level 2 (saved and checked by `make stack`) into `folder`; returns its manifest record."""
    from ..stacking.persist import LEVEL_DIR

    level2 = read_manifest(source).get("level2")
    if level2 is None:
        raise PipelineError(f"{source.relative_to(ctx.root)} holds no fitted level 2 ({LEVEL_DIR}/): rebuild it "
                            f"with `make stack COMP={ctx.comp}`")
    if level2.get("tabular_cols"):  # the kernel reads image headers only, not the tabular columns' encoding
        raise PipelineError(f"{source.relative_to(ctx.root)}: its level 2 reads competition.tabular_cols, which a "
                            f"bundle cannot yet: set stack.method to a blend, or competition.tabular_cols to {{}}")
    folder.mkdir(parents=True)
    for name in level2["files"]:
        atomic_copy(source / LEVEL_DIR / name, folder / name)
    log.info(f"level 2 {level2['method']}: {', '.join(level2['files'])} from {source.relative_to(ctx.root)}")
    return level2


def write_weights(cfg, fold_dirs: list, folder: Path) -> tuple[list[str], int]:
    """One file per fold with the state dicts it predicts with (predict.checkpoint); returns the file names and how
    many models a fold averages."""
    from ..checkpoints import save_checkpoint, weights_for_prediction

    names, per_fold = [], set()
    for k, fold_dir in enumerate(fold_dirs):
        states = weights_for_prediction(fold_dir, cfg.predict.checkpoint)
        save_checkpoint(folder / f"fold{k}.pt", {"weights": states})
        names.append(f"fold{k}.pt")
        per_fold.add(len(states))
    return names, max(per_fold)


def link_or_copy(src: Path, dst: Path) -> None:
    """A cached wheel into the dataset: a hard link (cache files never change), a copy across file systems."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@dataclass(frozen=True)
class Plan:
    """What a bundle is made of, resolved and checked before anything is written."""
    round: int
    source: Path                # the submission's predictions folder (a stack's or an experiment's)
    ref: dict                   # its input_ref
    inputs: dict                # {experiment: its prediction folder}
    experiments: dict           # {experiment: (its config, its trained fold folders)}
    level2: bool                # the source is a stack: its fitted level 2 is bundled
    target: object              # bundle.wheels.Target
    pins: dict                  # {dependency: version}
    versions: dict              # python, torch, torchvision, foldstack
    content: dict               # what the key hashes, but the Kaggle ids
    ids: object                 # bundle.metadata.KaggleIds
    key: str


def plan(ctx) -> Plan:
    from ..bundle.metadata import kaggle_ids
    from ..bundle.wheels import Target, bundle_versions, inference_pins, project_root, source_fingerprint

    args, cfg = ctx.args, ctx.cfg
    code = source_fingerprint(project_root())
    n, source = submission_source(ctx)
    ref, manifest = input_ref(source, ctx.root), read_manifest(source)
    level2 = manifest["stage"] == "stack"
    inputs = ({name: ctx.root / r["path"] for name, r in manifest["inputs"].items()} if level2
              else {cfg.submit.source: source})
    experiments = {name: experiment_folds(ctx, name, n, path) for name, path in inputs.items()}
    target = Target.this_interpreter(args.python_version, args.platform)
    pins = inference_pins(target, with_xgboost=level2 and cfg.stack.method == "xgboost")
    versions = bundle_versions(target)
    content = {"format": FORMAT, "source": ref["key"], "round": n, **sections(cfg, ["competition", "stack", "submit"]),
               "code": code, "target": asdict(target), "pins": pins, "versions": versions, "gpu": bool(args.gpu)}
    ids = kaggle_ids(ctx.comp, stable_hash(content, 8), args.kaggle_user, args.dataset_id, args.kernel_id,
                     args.competition)
    return Plan(n, source, ref, inputs, experiments, level2, target, pins, versions, content, ids,
                stable_hash({**content, "kaggle": asdict(ids)}))


def write_dataset(ctx, p: Plan, dataset: Path, wheel_cache: Path) -> tuple:
    """The dataset folder (level 2, weights, configs, wheels); returns (its BundleSpec, the level 2's record)."""
    from ..bundle import layout
    from ..bundle.metadata import DATASET_METADATA, dataset_metadata
    from ..bundle.wheels import PROJECT, build_project_wheel, fetch_wheels, project_root

    cfg, names = ctx.cfg, output_names(ctx.cfg.competition)
    preds = load_predictions(p.source, ctx.train.ids, ctx.test.ids, len(names))
    thresholds = level_thresholds(cfg.competition, cfg.stack, ctx.targets, p.source, names, preds.oof)
    level2 = copy_level2(ctx, p.source, dataset / layout.LEVEL2) if p.level2 else None
    records = []
    for name, (exp_cfg, dirs) in p.experiments.items():
        folder = dataset / layout.EXPERIMENTS / name
        folder.mkdir(parents=True)
        layout.write_config(folder / layout.CONFIG_FILE, exp_cfg)
        files, per_fold = write_weights(exp_cfg, dirs, folder)
        records.append(layout.Experiment(name, f"{layout.EXPERIMENTS}/{name}/{layout.CONFIG_FILE}",
                                         [f"{layout.EXPERIMENTS}/{name}/{f}" for f in files], per_fold))
    layout.write_config(dataset / layout.CONFIG_FILE, cfg)
    wheels = dataset / layout.WHEELS
    wheels.mkdir()
    names_written = [build_project_wheel(project_root(), wheels).name]
    for path in fetch_wheels(p.pins, wheel_cache, p.target):
        link_or_copy(path, wheels / path.name)
        names_written.append(path.name)
    requirements = [f"{PROJECT}=={p.versions[PROJECT]}"] + [f"{name}=={v}" for name, v in p.pins.items()]
    atomic_write_text(wheels / layout.REQUIREMENTS, "\n".join(requirements) + "\n")
    spec = layout.BundleSpec(
        key=p.key, comp=ctx.comp, competition=p.ids.competition, dataset=p.ids.dataset, source=cfg.submit.source,
        round=p.round, experiments=records, level2=layout.LEVEL2 if level2 else None,
        meta_features=level2["meta_features"] if level2 else [],
        thresholds=None if thresholds is None else [float(t) for t in thresholds], n_outputs=len(names),
        versions=p.versions, wheels=sorted(names_written))
    layout.write_spec(dataset / layout.BUNDLE_FILE, spec)
    atomic_write_json(dataset / DATASET_METADATA, dataset_metadata(p.ids))
    return spec, level2


def write_kernel(p: Plan, kernel: Path, gpu: bool) -> None:
    """kernel/: the script filled in, the notebook made from it, kernel-metadata.json."""
    from ..bundle.metadata import KERNEL_METADATA, NOTEBOOK, SCRIPT, kernel_metadata, kernel_script, notebook

    script = kernel_script({"key": p.key, "dataset": p.ids.dataset, "competition": p.ids.competition,
                            "versions": {k: p.versions[k] for k in ("python", "torch", "torchvision")}})
    atomic_write_text(kernel / SCRIPT, script)
    atomic_write_json(kernel / NOTEBOOK, notebook(script))
    atomic_write_json(kernel / KERNEL_METADATA, kernel_metadata(p.ids, gpu))


def run(ctx) -> Path:
    p = plan(ctx)
    final = artifact_path(ctx.root, "bundle", ctx.comp, p.key)
    if is_complete(final):
        log.info(f"bundle up to date: {final} ({folder_bytes(final) / 1e6:.1f} MB)")
        print(final)
        return final
    args = ctx.args
    with staging(final) as tmp:
        spec, level2 = write_dataset(ctx, p, tmp / "dataset",
                                     Path(args.wheel_cache) if args.wheel_cache else stage_root(ctx.root, "bundle", ".wheels"))
        write_kernel(p, tmp / "kernel", bool(args.gpu))
        size = folder_bytes(tmp / "dataset")
        write_manifest(tmp, "bundle", p.key, sections(ctx.cfg, ["competition", "stack", "submit"]),
                       fold_key=p.ref["fold_key"], inputs={"source": p.ref}, metrics={"dataset_bytes": size},
                       kaggle=asdict(p.ids), round=p.round, experiments=list(p.experiments), level2=level2,
                       versions=p.versions, target=asdict(p.target), code=p.content["code"], pins=p.pins,
                       wheels=spec.wheels)
    log.info(f"bundle of {ctx.cfg.submit.source} ({len(p.experiments)} experiment(s), {len(spec.wheels)} wheels, "
             f"{size / 1e6:.1f} MB) -> {final}; push it with `make kaggle-push COMP={ctx.comp}`")
    print(final)
    return final
