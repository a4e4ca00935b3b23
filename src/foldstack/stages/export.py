"""`make export`: every trained fold of the experiment to ONNX, each checked with ONNX Runtime against PyTorch.

One file per fold, export/<comp>/<exp>/<key>/fold<k>.onnx (key: the train key, predict.checkpoint and the checked
sizes), with export.json and a manifest, built in a staging folder renamed into place; a folder already exported
is reported again, not rebuilt. A fold's graph computes what `make oof` computes for that fold with TTA off
(engine/export.py): the checkpoint(s) of predict.checkpoint, probabilities averaged, softmax or sigmoid. The input
contract, also in the file's metadata_props and in export.json:

  input   `images`: uint8 (N, C, H, W), RGB, 0..255, after the evaluation transform and before normalisation (the
          graph normalises with data/device.py's Normalize, as training and inference do)
  output  `probs`: float32 (N, n_outputs) probabilities, not logits: binary has one column (the positive class)

N, H and W are dynamic unless timm marks the architecture `fixed_input_size` (a ViT). The graph is checked at
data.img_size and the other --sizes on the first --check-rows test images; a difference from PyTorch over
engine.export.MAX_DIFF stops the export with one line. Speed: median images/s over --repeats batches of --batch
random images, PyTorch and ONNX Runtime (CPUExecutionProvider) on this machine's CPU."""
import json
import logging

import numpy as np

from ..errors import PipelineError
from ..lineage import fold_dirs
from ..utils.io import atomic_write_json, stable_hash
from ..utils.tables import format_table

log = logging.getLogger("foldstack")


def add_arguments(p) -> None:
    p.add_argument("--sizes", type=int, nargs="+", default=None, metavar="SIDE",
                   help="input sides the graph is checked and timed at; data.img_size is always one, first "
                        "(default: data.img_size and img_size * 1.5 rounded to a multiple of 32)")
    p.add_argument("--check-rows", type=int, default=8, help="test images compared ORT vs PyTorch (default 8)")
    p.add_argument("--batch", type=int, default=32, help="batch of the speed measurement (default 32)")
    p.add_argument("--repeats", type=int, default=7,
                   help="timed batches per measurement, after 2 warm-up ones; the median counts (default 7)")


def export_sizes(img_size: int, sizes) -> list[int]:
    """data.img_size first, then the other requested sides in order, each once (default: img_size * 1.5 rounded
    to a multiple of 32)."""
    sizes = [max(32, int(round(img_size * 1.5 / 32)) * 32)] if sizes is None else list(sizes)
    if any(s < 16 for s in sizes):
        raise PipelineError(f"--sizes {' '.join(map(str, sizes))}: every side must be at least 16 px")
    return list(dict.fromkeys([img_size, *sizes]))


def table(report: dict) -> str:
    rows = [[str(f["fold"]), size, f"{m['max_abs_diff']:.2e}", f"{m['torch_images_per_s']:.1f}",
             f"{m['ort_images_per_s']:.1f}", f"{m['ort_images_per_s'] / m['torch_images_per_s']:.2f}x"]
            for f in report["folds"] for size, m in f["sizes"].items()]
    return format_table(["fold", "size", "max |diff|", "torch img/s", "ORT img/s", "ORT / torch"], rows, left=0)


def run(ctx) -> dict:
    from ..artifacts import artifact_path, is_complete, staging, write_manifest
    from ..models.meta_head import refuse_meta_head

    args = ctx.args
    for name in ("check_rows", "batch", "repeats"):
        if getattr(args, name) < 1:
            raise PipelineError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be at least 1")
    cfg = ctx.cfg
    refuse_meta_head(cfg, "make export (an ONNX graph of one image input)")
    trained = fold_dirs(ctx)  # every fold trained, on this config's split
    sizes = export_sizes(cfg.data.img_size, args.sizes)
    key = stable_hash({"train": trained.path.name, "checkpoint": cfg.predict.checkpoint, "sizes": sizes})
    final = artifact_path(ctx.root, "export", ctx.comp, key, ctx.exp)
    if is_complete(final):
        report = json.loads((final / "export.json").read_text())
        print(table(report), flush=True)
        log.info(f"already exported: {final}")
        print(final)
        return report

    import torch

    from ..engine import export
    from ..engine.inference import load_fold_models

    onnx, ort = export.requirements()
    n_outputs = ctx.targets.shape[1]
    x_check = export.check_images(cfg, ctx.images, np.arange(min(args.check_rows, len(ctx.test.ids))))
    contract = export.contract(cfg, n_outputs, ctx.images.float_pixels)
    log.info(f"export: {len(trained.dirs)} fold(s) of {ctx.exp} ({cfg.model.name}, checkpoint "
             f"{cfg.predict.checkpoint}) from {trained.path} at {' and '.join(f'{s}px' for s in sizes)}")
    report = {"comp": ctx.comp, "experiment": ctx.exp, "train": str(trained.path.relative_to(ctx.root)),
              "fold_key": trained.fold_key, "sizes": sizes, "check_rows": len(x_check), "batch": args.batch,
              "repeats": args.repeats, "max_abs_diff_allowed": export.MAX_DIFF, "torch": torch.__version__,
              "onnxruntime": ort.__version__, "onnx": onnx.__version__, "threads": torch.get_num_threads(),
              "contract": contract, "folds": []}
    with staging(final) as tmp:
        for k, fold_dir in enumerate(trained.dirs):
            net = export.ExportNet(load_fold_models(cfg, n_outputs, fold_dir, torch.device("cpu")), cfg.data,
                                   cfg.competition.task).eval()
            entry = {"fold": k, **export.export_fold(net, tmp / f"fold{k}.onnx", x_check, sizes,
                                                     {**contract, "fold": k}, args.batch, args.repeats)}
            report["folds"].append(entry)
            log.info(f"fold {k}: {entry['path']} {entry['bytes'] / 1e6:.2f} MB, max |diff| "
                     f"{max(m['max_abs_diff'] for m in entry['sizes'].values()):.2e}")
        atomic_write_json(tmp / "export.json", report)
        write_manifest(tmp, "export", key, config={"predict_checkpoint": cfg.predict.checkpoint, "sizes": sizes},
                       fold_key=trained.fold_key,
                       inputs={"train": {"path": report["train"], "key": trained.path.name,
                                         "fold_key": trained.fold_key}})
    print(table(report), flush=True)
    print(f"torch {torch.__version__} vs onnxruntime {ort.__version__} (CPUExecutionProvider), "
          f"{torch.get_num_threads()} threads, batch {args.batch}, median of {args.repeats}", flush=True)
    print(final)
    return report
