"""One fold's models as an ONNX graph that computes what `make oof` computes for that fold with TTA off, checked
with ONNX Runtime against PyTorch and timed (stages/export.py runs it per fold). The graph takes uint8 (N, C, H, W)
RGB, normalises inside (data.device.Normalize) and averages the checkpoints' probabilities as predict_probs does."""
import json
import logging
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.device import Normalize
from ..errors import PipelineError, first_line
from ..loss.factory import logits_to_probs
from ..utils.io import sha256_file
from ..utils.timing import median_seconds

log = logging.getLogger("foldstack")

MAX_DIFF = 1e-4
INPUT, OUTPUT = "images", "probs"


def requirements():
    """(onnx, onnxruntime), or the one line that says how to install them."""
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401  torch.onnx.export(dynamo=True) needs it
    except ImportError as e:
        raise PipelineError(f"make export needs onnx, onnxruntime and onnxscript ({e.name} is missing): "
                            f"pip install -c constraints.txt -e '.[export]'") from None
    return onnx, onnxruntime


class ExportNet(nn.Module):
    """uint8 (N, C, H, W), or float32 for float sources -> probabilities averaged over `models` (one fold's),
    normalised inside."""

    def __init__(self, models: list, data, task: str):
        super().__init__()
        self.normalize, self.models, self.task = Normalize.of(data), nn.ModuleList(models), task

    def forward(self, images):
        x = self.normalize(images)
        probs = 0
        for model in self.models:
            probs = probs + logits_to_probs(model(x), self.task)
        return probs / len(self.models)

    def fixed_input_size(self) -> bool:
        """timm marks the architectures whose graph is tied to one input size (position embeddings, window
        attention): those export with the batch alone dynamic."""
        return any(m.pretrained_cfg.get("fixed_input_size", False) for m in self.models)


def contract(cfg, n_outputs: int, float_pixels: bool = False) -> dict:
    """The input/output contract, written into each graph's metadata_props and export.json. float_pixels: the
    image source gives floats (data/sources.py), taken as they are read, in their own units."""
    comp = cfg.competition
    source = "" if comp.image_source == "file" else f" ({comp.image_source})"
    return {"input_name": INPUT, "input_dtype": "float32" if float_pixels else "uint8",
            "input_layout": (f"NCHW{source} in the source's units" if float_pixels
                             else "NCHW RGB 0..255" if comp.image_source == "file" else f"NCHW{source} 0..255"),
            "input_shape": ["batch", len(cfg.data.mean), "height", "width"], "img_size": cfg.data.img_size,
            "normalisation": "inside the graph: " + ("(x - mean) / std" if float_pixels
                                                     else "(x - 255 * mean) / (255 * std)"),
            "mean": list(cfg.data.mean),
            "std": list(cfg.data.std), "output_name": OUTPUT, "output_shape": ["batch", n_outputs],
            "output": "probabilities: " + ("softmax" if comp.task == "multiclass" else "sigmoid")
                      + " of the logits" + (" (the positive class)" if comp.task == "binary" else ""),
            "task": comp.task, "classes": list(comp.classes), "model": cfg.model.name,
            "predict_checkpoint": cfg.predict.checkpoint}


def export_onnx(net: ExportNet, example, path) -> bool:
    """torch.onnx.export's dynamo exporter (the legacy TorchScript one is deprecated): batch always dynamic,
    H and W too unless the architecture is tied to its input size. Returns whether H and W are dynamic."""
    for name in ("onnxscript", "onnx_ir", "torch.onnx"):  # the exporter's passes log every rewrite at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    spatial = not net.fixed_input_size()
    shapes = {0: torch.export.Dim("batch")}
    if spatial:
        shapes.update({2: torch.export.Dim("height", min=16), 3: torch.export.Dim("width", min=16)})
    else:
        log.info(f"{path.name}: the architecture has a fixed input size: "
                 f"{example.shape[2]}x{example.shape[3]} input, the batch alone dynamic")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(net, (example,), dynamo=True, input_names=[INPUT], output_names=[OUTPUT],
                                        dynamic_shapes={INPUT: shapes}, verbose=False)
    except torch.onnx.errors.OnnxExporterError as e:
        raise PipelineError(f"torch.onnx.export failed for {path.name}: {first_line(e, with_type=True)}") from None
    program.save(str(path))
    return spatial


def add_metadata(onnx, path, metadata: dict) -> None:
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for k, v in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v if isinstance(v, str) else json.dumps(v)
    onnx.save(model, str(path))


def check_images(cfg, images, rows) -> torch.Tensor:
    """The test rows `rows` of an ImageStore through the evaluation transform, before normalisation (the graph
    normalises): uint8 (n, C, img_size, img_size), float32 in the source's units for float sources."""
    from ..data.dataset import ImageDataset, make_loader
    from ..data.transforms import build_transforms

    dataset = ImageDataset(images, images.test_rows(rows), None, build_transforms(cfg.data, False))
    x = torch.cat([batch for batch, _ in make_loader(dataset, cfg.data.batch_size * 2, 0)])
    if x.dtype != (torch.float32 if images.float_pixels else torch.uint8):
        raise PipelineError(f"internal: the evaluation transform gives {x.dtype} for this image source")
    return x


def resized(x, size: int):
    """A batch at another side (bilinear; uint8 rounded back to uint8)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    y = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False)
    return y.round().clamp(0, 255).to(x.dtype) if x.dtype == torch.uint8 else y


def checked_diff(net: ExportNet, session, x, what: str) -> float:
    """The largest |ORT - PyTorch| probability on batch x; over MAX_DIFF (or another shape) stops with one line."""
    with torch.inference_mode():
        expected = net(x).numpy()
    got = session.run([OUTPUT], {INPUT: x.numpy()})[0]
    diff = float(np.abs(got - expected).max())
    if got.shape != expected.shape or not diff <= MAX_DIFF:
        raise PipelineError(f"{what}: ONNX Runtime probabilities differ from PyTorch by {diff:.3g} at "
                            f"{x.shape[-1]}px (shape {got.shape} vs {expected.shape}; allowed {MAX_DIFF})")
    return diff


def speeds(net: ExportNet, session, batch: int, size: int, like: torch.Tensor, repeats: int) -> dict:
    """Median images/s of PyTorch (eval, inference_mode) and ONNX Runtime on one random batch of `like`'s
    channels and dtype."""
    shape = (batch, like.shape[1], size, size)
    images = (torch.randint(0, 256, shape, dtype=torch.uint8) if like.dtype == torch.uint8
              else torch.randn(shape, dtype=like.dtype))
    feed = {INPUT: images.numpy()}

    def torch_step():
        with torch.inference_mode():
            net(images)

    return {"torch_images_per_s": batch / median_seconds(torch_step, repeats),
            "ort_images_per_s": batch / median_seconds(lambda: session.run([OUTPUT], feed), repeats)}


def export_fold(net: ExportNet, path, x_check, sizes: list, metadata: dict, batch: int, repeats: int) -> dict:
    """Export, check at every size (the first alone when H and W are fixed) and time one fold: its export.json
    entry (the caller adds the fold number)."""
    onnx, ort = requirements()
    dynamic = export_onnx(net, x_check[:2].clone(), path)
    add_metadata(onnx, path, {**metadata, "checkpoints_averaged": len(net.models), "dynamic_height_width": dynamic})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    entry = {"path": path.name, "checkpoints_averaged": len(net.models), "dynamic_height_width": dynamic, "sizes": {}}
    for size in sizes if dynamic else sizes[:1]:
        x = resized(x_check, size)
        entry["sizes"][str(size)] = {"max_abs_diff": checked_diff(net, session, x, f"fold {metadata['fold']}"),
                                     **speeds(net, session, batch, size, x, repeats)}
    return {**entry, "bytes": path.stat().st_size, "sha256": sha256_file(path)}
