"""`make export`: every trained fold of the experiment to ONNX, each checked with ONNX Runtime against PyTorch.

One file per fold, export/<comp>/<exp>/<key>/fold<k>.onnx (key: a hash of the models folder's key, i.e. the
train key, predict.checkpoint and the checked sizes), with export.json and a manifest beside them, built in a
staging folder renamed into place. A folder already exported is reported again, not rebuilt.

What a fold's graph computes is what `make oof` computes for that fold with TTA off: the weights of
predict.checkpoint as `load_fold_models` loads them (several checkpoints, e.g. predict.checkpoint=snapshots or a
list, are all in the one graph and their probabilities averaged, as predict_probs averages them), then
softmax (multiclass) or sigmoid (binary, multilabel) of the logits. The input contract, also in the file's
metadata (metadata_props) and in export.json:

  input   `images`: uint8 (N, C, H, W), RGB, 0..255: the image after the evaluation transform (resize to the
          cache side, centre crop to data.img_size), before normalisation; the graph normalises inside
          ((x - 255 mean) / (255 std), as data/device.py `to_device` does on the device)
  output  `probs`: float32 (N, n_outputs) probabilities (not logits): binary has one column (the positive class)

N, H and W are dynamic axes when the architecture allows it (a CNN does): the graph is checked at data.img_size
and at the other --sizes (default img_size * 1.5 rounded to a multiple of 32; `make export EXPORT_SIZES=...`) on
the first --check-rows test images of the competition through the evaluation transform (resized bilinearly to
the other sizes). A fold
whose ONNX Runtime probabilities differ from PyTorch's by more than MAX_DIFF stops the export with one line.
Speed: median images/s over --repeats timed batches of --batch random images, PyTorch (eval, inference_mode) and
ONNX Runtime (CPUExecutionProvider), both on the CPU of this machine."""
import hashlib
import json
import logging
import statistics
import time

import numpy as np

from ..errors import PipelineError
from ..utils.io import atomic_write_json, stable_hash
from .lineage import fold_dirs

log = logging.getLogger("foldstack")

MAX_DIFF = 1e-4
INPUT, OUTPUT = "images", "probs"


def add_arguments(p) -> None:
    p.add_argument("--sizes", type=int, nargs="+", default=None, metavar="SIDE",
                   help="input sides the graph is checked and timed at; data.img_size is always one, first "
                        "(default: data.img_size and img_size * 1.5 rounded to a multiple of 32)")
    p.add_argument("--check-rows", type=int, default=8, help="test images compared ORT vs PyTorch (default 8)")
    p.add_argument("--batch", type=int, default=32, help="batch of the speed measurement (default 32)")
    p.add_argument("--repeats", type=int, default=7,
                   help="timed batches per measurement, after 2 warm-up ones; the median counts (default 7)")


def default_size2(img_size: int) -> int:
    return max(32, int(round(img_size * 1.5 / 32)) * 32)


def export_sizes(img_size: int, sizes) -> list[int]:
    """data.img_size first, then the other requested sides in order, each once."""
    sizes = [default_size2(img_size)] if sizes is None else list(sizes)
    bad = [s for s in sizes if s < 16]
    if bad:
        raise PipelineError(f"--sizes {' '.join(map(str, sizes))}: every side must be at least 16 px")
    return list(dict.fromkeys([img_size, *sizes]))


def _requirements():
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401  torch.onnx.export(dynamo=True) needs it
    except ImportError as e:
        raise PipelineError(f"make export needs onnx, onnxruntime and onnxscript ({e.name} is missing): "
                            f"pip install -c constraints.txt -e '.[export]'") from None
    return onnx, onnxruntime


def export_module(models: list, data, task: str):
    """uint8 (N, C, H, W) -> probabilities averaged over `models` (one fold's), normalised inside."""
    import torch
    from torch import nn

    from ..loss import logits_to_probs

    class ExportNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.models = nn.ModuleList(models)
            # the constants of data/device.py _scale_shift, in the same float32 arithmetic
            self.register_buffer("shift", torch.tensor(data.mean, dtype=torch.float32).view(1, -1, 1, 1) * 255)
            self.register_buffer("scale", 1 / (torch.tensor(data.std, dtype=torch.float32).view(1, -1, 1, 1) * 255))

        def forward(self, images):
            x = (images.float() - self.shift) * self.scale
            probs = 0
            for model in self.models:
                probs = probs + logits_to_probs(model(x), task)
            return probs / len(self.models)

    return ExportNet().eval()


def export_onnx(module, example, path, dynamic_spatial: bool = True) -> bool:
    """torch.onnx.export's dynamo exporter (the legacy TorchScript one is deprecated): batch always dynamic,
    H and W too when the graph allows it. Returns whether H and W are dynamic."""
    import warnings

    import torch

    for name in ("onnxscript", "onnx_ir", "torch.onnx"):  # the exporter's passes log every rewrite at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    batch = torch.export.Dim("batch")
    shapes = {0: batch}
    if dynamic_spatial:
        shapes.update({2: torch.export.Dim("height", min=16), 3: torch.export.Dim("width", min=16)})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, (example,), dynamo=True, input_names=[INPUT], output_names=[OUTPUT],
                                        dynamic_shapes={"images": shapes}, verbose=False)
    except Exception as e:  # noqa: BLE001  an architecture tied to its input size: batch alone dynamic
        if dynamic_spatial:
            log.warning(f"export with dynamic height/width failed ({e.__class__.__name__}): fixed "
                        f"{example.shape[2]}x{example.shape[3]} input")
            return export_onnx(module, example, path, dynamic_spatial=False)
        raise PipelineError(f"torch.onnx.export failed for {path.name}: {one_line(e)}") from None
    program.save(str(path))
    return dynamic_spatial


def one_line(e: BaseException) -> str:
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return f"{e.__class__.__name__}: {lines[0] if lines else ''}"[:300]


def add_metadata(onnx, path, contract: dict) -> None:
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for k, v in contract.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v if isinstance(v, str) else json.dumps(v)
    onnx.save(model, str(path))


def resized(x, size: int):
    """A uint8 batch at another side (bilinear, rounded back to uint8)."""
    import torch.nn.functional as F

    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    y = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False)
    return y.round().clamp(0, 255).to(x.dtype)


def images_per_second(step, batch: int, repeats: int) -> float:
    for _ in range(2):  # warm-up: the first calls at a new shape pick kernels
        step()
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_images(ctx, n: int):
    """The first n test rows through the evaluation transform: uint8 (n, C, img_size, img_size)."""
    import torch

    from ..engine.inference import inference_loader

    n = min(n, len(ctx.test.ids))
    loader = inference_loader(ctx.cfg, ctx.images, ctx.images.test_rows(np.arange(n)), torch.device("cpu"))
    x = torch.cat([batch for batch, _ in loader])
    if x.dtype != torch.uint8:
        raise PipelineError(f"internal: the evaluation transform gives {x.dtype}, not uint8")
    return x


def format_table(rows: list[dict]) -> str:
    head = ["fold", "size", "max |diff|", "torch img/s", "ORT img/s", "ORT / torch"]
    cells = [head] + [[str(r["fold"]), str(r["size"]), f"{r['max_abs_diff']:.2e}", f"{r['torch_images_per_s']:.1f}",
                       f"{r['ort_images_per_s']:.1f}", f"{r['ort_images_per_s'] / r['torch_images_per_s']:.2f}x"]
                      for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def table_rows(report: dict) -> list[dict]:
    return [dict(fold=f["fold"], size=int(s), **m) for f in report["folds"] for s, m in f["sizes"].items()]


def run(ctx) -> dict:
    from ..artifacts import is_complete, staging, write_manifest

    args = ctx.args
    for name in ("check_rows", "batch", "repeats"):
        if getattr(args, name) < 1:
            raise PipelineError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be at least 1")
    cfg, comp = ctx.cfg, ctx.cfg.competition
    trained = fold_dirs(ctx)  # every fold trained, on this config's split
    sizes = export_sizes(cfg.data.img_size, args.sizes)
    key = stable_hash({"train": trained.path.name, "checkpoint": cfg.predict.checkpoint, "sizes": sizes})
    final = ctx.root / "export" / ctx.comp / ctx.exp / key
    if is_complete(final):
        report = json.loads((final / "export.json").read_text())
        print(format_table(table_rows(report)), flush=True)
        log.info(f"already exported: {final}")
        print(final)
        return report
    onnx, ort = _requirements()

    import torch

    from ..engine.inference import load_fold_models

    n_outputs, channels = ctx.targets.shape[1], len(cfg.data.mean)
    x_check = check_images(ctx, args.check_rows)
    contract = {"input_name": INPUT, "input_dtype": "uint8", "input_layout": "NCHW RGB 0..255",
                "input_shape": ["batch", channels, "height", "width"], "img_size": cfg.data.img_size,
                "normalisation": "inside the graph: (x - 255 * mean) / (255 * std)", "mean": list(cfg.data.mean),
                "std": list(cfg.data.std), "output_name": OUTPUT, "output_shape": ["batch", n_outputs],
                "output": "probabilities: " + ("softmax" if comp.task == "multiclass" else "sigmoid")
                          + " of the logits" + (" (the positive class)" if comp.task == "binary" else ""),
                "task": comp.task, "classes": list(comp.classes), "model": cfg.model.name,
                "predict_checkpoint": cfg.predict.checkpoint}
    log.info(f"export: {len(trained.dirs)} fold(s) of {ctx.exp} ({cfg.model.name}, checkpoint "
             f"{cfg.predict.checkpoint}) from {trained.path} at {' and '.join(f'{s}px' for s in sizes)}")
    report = {"comp": ctx.comp, "experiment": ctx.exp, "train": str(trained.path.relative_to(ctx.root)),
              "fold_key": trained.fold_key, "sizes": sizes, "check_rows": len(x_check), "batch": args.batch,
              "repeats": args.repeats, "max_abs_diff_allowed": MAX_DIFF, "torch": torch.__version__,
              "onnxruntime": ort.__version__, "onnx": onnx.__version__, "threads": torch.get_num_threads(),
              "contract": contract, "folds": []}
    with staging(final) as tmp:
        for k, fold_dir in enumerate(trained.dirs):
            models = load_fold_models(cfg, n_outputs, fold_dir, torch.device("cpu"))
            module = export_module(models, cfg.data, comp.task)
            path = tmp / f"fold{k}.onnx"
            dynamic = export_onnx(module, x_check[:2].clone(), path)
            add_metadata(onnx, path, {**contract, "fold": k, "checkpoints_averaged": len(models),
                                      "dynamic_height_width": dynamic})
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            entry = {"fold": k, "path": f"fold{k}.onnx", "checkpoints_averaged": len(models),
                     "dynamic_height_width": dynamic, "sizes": {}}
            for size in sizes if dynamic else sizes[:1]:
                x = resized(x_check, size)
                with torch.inference_mode():
                    expected = module(x).numpy()
                got = session.run([OUTPUT], {INPUT: x.numpy()})[0]
                diff = float(np.abs(got - expected).max())
                if got.shape != expected.shape or not diff <= MAX_DIFF:
                    raise PipelineError(f"fold {k}: ONNX Runtime probabilities differ from PyTorch by {diff:.3g} "
                                        f"at {size}px (shape {got.shape} vs {expected.shape}; allowed {MAX_DIFF})")
                bench = torch.randint(0, 256, (args.batch, channels, size, size), dtype=torch.uint8)

                def torch_step():
                    with torch.inference_mode():
                        module(bench)

                feed = {INPUT: bench.numpy()}
                entry["sizes"][str(size)] = {
                    "max_abs_diff": diff,
                    "torch_images_per_s": images_per_second(torch_step, args.batch, args.repeats),
                    "ort_images_per_s": images_per_second(lambda: session.run([OUTPUT], feed), args.batch,
                                                          args.repeats)}
            entry.update(bytes=path.stat().st_size, sha256=sha256(path))
            report["folds"].append(entry)
            log.info(f"fold {k}: {path.name} {entry['bytes'] / 1e6:.2f} MB, max |diff| "
                     f"{max(m['max_abs_diff'] for m in entry['sizes'].values()):.2e}")
        atomic_write_json(tmp / "export.json", report)
        write_manifest(tmp, "export", key, config={"predict_checkpoint": cfg.predict.checkpoint, "sizes": sizes},
                       fold_key=trained.fold_key,
                       inputs={"train": {"path": report["train"], "key": trained.path.name,
                                         "fold_key": trained.fold_key}})
    print(format_table(table_rows(report)), flush=True)
    print(f"torch {torch.__version__} vs onnxruntime {ort.__version__} (CPUExecutionProvider), "
          f"{torch.get_num_threads()} threads, batch {args.batch}, median of {args.repeats}", flush=True)
    print(final)
    return report
