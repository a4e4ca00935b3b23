"""Use the trained models outside the pipeline: the top-k classes of an image file, or of every image under a
folder, from the experiment's fold models averaged (every fold trained), with the configured TTA.

The images go through what test rows go through in `make oof`, so a test image gets its row's probabilities in
oof/<comp>/<exp>/<hash>/test.npy. Writes a CSV (image, top1, p1, ..., one column per class up to CSV_MAX_OUTPUTS
classes; with predict.keep_top at most its k classes and no per-class columns) to --out, default
predictions/<comp>/<exp>/<folder name or file stem>.csv."""
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts import stage_root
from ..data.sources import FILE_SUFFIXES, file_samples
from ..discover import IMAGE_EXTS
from ..errors import PipelineError
from ..lineage import fold_dirs
from ..predictions import CSV_MAX_OUTPUTS
from ..utils.io import atomic_write_csv
from ..wide import TopProbs

log = logging.getLogger("foldstack")

SHOWN = 10  # images printed; the CSV has them all


def add_arguments(p) -> None:
    p.add_argument("--images", required=True, help="an image file, or a folder (every image file under it)")
    p.add_argument("--top-k", type=int, default=3, help="classes per image (capped at the number of classes)")
    p.add_argument("--out", default=None, help="CSV to write (default: predictions/<comp>/<exp>/<name>.csv "
                                               "under the project root)")


def find_images(path: Path, source: str = "file") -> tuple[list[Path], list[str]]:
    """The files to predict and their names in the CSV: a file alone (its name), or every file under a folder
    with a suffix of the competition's image source (image files, .npy, DICOM), recursively, sorted by path
    relative to the folder (that path is its name)."""
    if source not in ("file", *FILE_SUFFIXES):
        raise PipelineError(f"make predict reads one file per image; competition.image_source is {source}: "
                            f"predict through a competition folder (make oof) instead")
    suffixes = FILE_SUFFIXES.get(source, IMAGE_EXTS)
    if path.is_file():
        return [path], [path.name]
    if not path.is_dir():
        raise PipelineError(f"no such image file or folder: {path}")
    files = sorted((f for f in path.rglob("*") if f.suffix.lower() in suffixes and f.is_file()),
                   key=lambda f: f.relative_to(path).as_posix())
    if not files:
        raise PipelineError(f"no images found under {path} (suffixes: {' '.join(suffixes)})")
    return files, [f.relative_to(path).as_posix() for f in files]


def class_probs(probs: np.ndarray, task: str) -> np.ndarray:
    """(N, n_classes): binary's positive-class column p becomes the two classes (1-p, p)."""
    return np.concatenate([1 - probs, probs], axis=1) if task == "binary" else probs


def top_k_frame(names: list[str], probs: np.ndarray, classes: list[str], k: int) -> pd.DataFrame:
    """image, top1, p1, ..., topk, pk (highest first; ties in class order), then every class's probability
    when there are at most CSV_MAX_OUTPUTS classes."""
    if isinstance(probs, TopProbs):  # predict.keep_top: the kept classes are the ranking, best first
        k = max(1, min(k, probs.top))
        order, values = probs.classes[:, :k], probs.probs[:, :k]
    else:
        k = max(1, min(k, len(classes)))
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        values = np.take_along_axis(probs, order, 1)
    columns = {"image": names}
    for j in range(k):
        columns[f"top{j + 1}"] = [classes[c] for c in order[:, j]]
        columns[f"p{j + 1}"] = values[:, j]
    if len(classes) <= CSV_MAX_OUTPUTS and not isinstance(probs, TopProbs):
        clash = set(columns) & set(classes)
        for c, name in enumerate(classes):
            columns[f"prob_{name}" if clash else name] = probs[:, c]
    return pd.DataFrame(columns)


def run(ctx):
    from ..models.meta_head import refuse_meta_head

    args = ctx.args
    refuse_meta_head(ctx.cfg, "make predict IMAGES= (loose image files, no table row)")
    if args.top_k < 1:
        raise PipelineError(f"--top-k {args.top_k}: must be at least 1")
    images = Path(args.images).expanduser()
    source = ctx.cfg.competition.image_source
    files, names = find_images(images, source)
    trained = fold_dirs(ctx)  # every fold trained, on this config's split
    name = images.stem if images.is_file() else images.resolve().name
    out = Path(args.out).expanduser() if args.out else stage_root(ctx.root, "predict_images", ctx.comp, ctx.exp,
                                                                  f"{name}.csv")

    from ..engine.inference import load_fold_models, predict_files, tta_views
    from ..engine.runtime import resolve_device

    cfg, comp = ctx.cfg, ctx.cfg.competition
    device, views = resolve_device(cfg.runtime.device), tta_views(cfg)
    models = [m for fold_dir in trained.dirs for m in load_fold_models(cfg, ctx.targets.shape[1], fold_dir, device)]
    log.info(f"{len(files)} image(s), {len(models)} model(s) from {trained.path}, TTA: {len(views)} view(s) "
             f"({', '.join(v.name for v in views)}) on {device}")
    # no cache: each file decoded and resized to the cache's side S, then the evaluation transform, as test rows
    samples = file_samples(source, files)
    if samples.float_pixels != ctx.train.samples.float_pixels:  # 16-bit files for an 8-bit model, or the reverse
        depth = {True: "16-bit (or float)", False: "8-bit"}
        raise PipelineError(f"{files[0]}: {depth[samples.float_pixels]} pixels, but the models were trained on "
                            f"{depth[ctx.train.samples.float_pixels]} ones ({ctx.train.samples.paths[0]})")
    probs = predict_files(models, cfg, samples, device, desc=f"{len(files)} images", top=ctx.keep_top)

    classes = list(comp.classes)
    frame = top_k_frame(names, probs if ctx.keep_top else class_probs(probs, comp.task), classes, args.top_k)
    atomic_write_csv(out, frame)
    k = sum(c.startswith("top") for c in frame.columns)
    for row in frame.head(SHOWN).itertuples(index=False):
        values = row[1:1 + 2 * k]
        print(f"{row[0]}: " + ", ".join(f"{values[2 * j]} {values[2 * j + 1]:.2f}" for j in range(k)))
    if len(frame) > SHOWN:
        print(f"... {len(frame) - SHOWN} more")
    print(out)
    return out
