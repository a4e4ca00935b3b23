"""`make summary`: what the experiment's model costs, without training it or reading an image.

For the model as configured (random weights: neither the hub weights of model.pretrained nor model.pretrained_path
are loaded, so no file is needed; an unset data.img_size is the input size of weights found in weights/) it reports
the parameters (total; trainable; trainable while the backbone is frozen when train.freeze_epochs > 0), the FLOPs
of one forward pass of one image at data.img_size (torch's FlopCounterMode; MACs = FLOPs / 2, the figure papers
quote), the feature width the head sees, and measured images/s on runtime.device:

  inference  eval mode, torch.inference_mode, batches of 2 x data.batch_size (random input), the pipeline's
             memory layout (runtime.channels_last) and mixed precision (train.amp, CUDA only)
  train      forward + backward of a loss on random targets (cross-entropy; BCE for binary/multilabel) at
             data.batch_size, the same layout and autocast. No optimizer step, augmentation or data loading:
             an upper bound of the real training speed (`make bench` measures the real step and loader).

Each is timed after 2 warm-up batches for about --seconds and at least 3 batches. Prints a table and writes
summary/<comp>/<exp>.json per experiment (--all-experiments: baseline and every configs/exp/*.yaml)."""
import logging
import time

from ..errors import PipelineError
from ..utils.io import atomic_write_json, stable_hash

log = logging.getLogger("foldstack")

WARMUP, MIN_BATCHES = 2, 3


def add_arguments(p) -> None:
    p.add_argument("--all-experiments", action="store_true",
                   help="summarise every configs/exp/*.yaml (the --set overrides apply to each)")
    p.add_argument("--seconds", type=float, default=2.0,
                   help="time each speed measurement for about this long (at least 3 batches; default 2)")
    p.add_argument("--no-speed", action="store_true", help="parameters and FLOPs only: no timed batches")


def count_flops(model, img_size: int, channels: int = 3, device=None) -> int:
    """FLOPs of one forward pass of one (channels, img_size, img_size) image in eval mode (FlopCounterMode:
    a multiply-add counts 2). The model's training mode is restored."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    if device is None:
        device = next(model.parameters()).device if any(True for _ in model.parameters()) else "cpu"
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(1, channels, img_size, img_size, device=device)
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def count_parameters(model) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _synced(device) -> float:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _images_per_second(step, batch: int, device, seconds: float) -> float:
    for _ in range(WARMUP):
        step()
    n, t0 = 0, _synced(device)
    while True:
        step()
        n += 1
        elapsed = _synced(device) - t0
        if n >= MIN_BATCHES and elapsed >= seconds:
            return n * batch / elapsed


def _random_targets(task: str, n_outputs: int, batch: int, device):
    import torch

    if task == "multiclass":
        return torch.randint(0, n_outputs, (batch,), device=device)
    return torch.randint(0, 2, (batch, n_outputs), device=device).float()


def summarize(cfg, n_outputs: int, seconds: float = 2.0, speed: bool = True) -> dict:
    """The summary of cfg's model (see the module doc) as a JSON-able dict."""
    import torch
    import torch.nn.functional as F

    from ..engine.runtime import autocast, resolve_device, use_channels_last
    from ..models import create_model
    from ..models.net import set_backbone_trainable

    task, size = cfg.competition.task, cfg.data.img_size
    model = create_model(cfg.model.model_copy(update={"pretrained_path": None}), n_outputs, task)
    total, trainable = count_parameters(model)
    frozen = None
    if cfg.train.freeze_epochs > 0:  # the first epochs train the head (and pooling) only
        set_backbone_trainable(model, False)
        frozen = count_parameters(model)[1]
        set_backbone_trainable(model, True)
    device = resolve_device(cfg.runtime.device)
    layout = use_channels_last(cfg, device)
    model = model.to(device)
    if layout:
        model = model.to(memory_format=torch.channels_last)
    flops = count_flops(model, size, device=device)
    out = {"model": cfg.model.name, "model_key": stable_hash(cfg.model.model_dump()), "task": task,
           "n_outputs": n_outputs, "img_size": size, "params_total": total, "params_trainable": trainable,
           "params_trainable_frozen": frozen, "feature_width": int(model.num_features), "flops": flops,
           "gflops": flops / 1e9, "gmacs": flops / 2e9, "device": str(device), "channels_last": layout,
           "amp": bool(cfg.train.amp and device.type == "cuda"), "torch": torch.__version__,
           "threads": torch.get_num_threads(), "infer_batch": cfg.data.batch_size * 2,
           "train_batch": cfg.data.batch_size, "infer_images_per_s": None, "train_images_per_s": None,
           "train_step": "forward + backward, random targets; no optimizer step, no data loading"}
    if not speed:
        return out

    def batch_of(n):
        x = torch.randn(n, 3, size, size, device=device)
        return x.contiguous(memory_format=torch.channels_last) if layout else x

    x_infer, x_train = batch_of(out["infer_batch"]), batch_of(out["train_batch"])
    target = _random_targets(task, n_outputs, out["train_batch"], device)

    @torch.inference_mode()
    def infer():
        with autocast(cfg, device):
            model(x_infer)

    def train():
        with autocast(cfg, device):
            logits = model(x_train, target if task == "multiclass" else None)
            loss = (F.cross_entropy(logits.float(), target) if task == "multiclass"
                    else F.binary_cross_entropy_with_logits(logits.float(), target))
        loss.backward()
        model.zero_grad(set_to_none=True)

    try:
        model.eval()
        out["infer_images_per_s"] = _images_per_second(infer, out["infer_batch"], device, seconds)
        model.train()
        out["train_images_per_s"] = _images_per_second(train, out["train_batch"], device, seconds)
    except torch.cuda.OutOfMemoryError:
        log.warning(f"{cfg.model.name}: out of GPU memory at batch {out['infer_batch']} (inference) / "
                    f"{out['train_batch']} (train): speed not measured")
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: list[dict]) -> str:
    cols = [("experiment", lambda r: r["experiment"]), ("model", lambda r: r["model"]),
            ("img", lambda r: str(r["img_size"])),
            ("params", lambda r: f"{r['params_total']:,}"),
            ("trainable", lambda r: f"{r['params_trainable']:,}"
             + ("" if r["params_trainable_frozen"] is None else f" ({r['params_trainable_frozen']:,} frozen)")),
            ("GFLOPs", lambda r: f"{r['gflops']:.4g}"), ("GMACs", lambda r: f"{r['gmacs']:.4g}"),
            ("features", lambda r: str(r["feature_width"])),
            ("infer img/s", lambda r: _fmt(r["infer_images_per_s"], ".1f") + f" (bs {r['infer_batch']})"),
            ("train img/s", lambda r: _fmt(r["train_images_per_s"], ".1f") + f" (bs {r['train_batch']})")]
    cells = [[name for name, _ in cols]] + [[get(r) for _, get in cols] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
             for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    first = rows[0]
    lines.append(f"device {first['device']}, torch {first['torch']}, {first['threads']} threads; FLOPs: one "
                 f"image, eval; train img/s: forward + backward on random targets (no optimizer step, no loader)")
    return "\n".join(lines)


def experiments(ctx) -> list[str]:
    """Every configs/exp/*.yaml, and baseline (which needs no file) first."""
    names = sorted(p.stem for p in (ctx.root / "configs" / "exp").glob("*.yaml"))
    return ["baseline"] + [n for n in names if n != "baseline"]


def run(ctx) -> list[dict]:
    args = ctx.args
    names = experiments(ctx) if getattr(args, "all_experiments", False) else [ctx.exp]
    seconds, speed = getattr(args, "seconds", 2.0), not getattr(args, "no_speed", False)
    if seconds < 0:
        raise PipelineError(f"--seconds must be >= 0, got {seconds}")
    n_outputs = ctx.targets.shape[1]
    rows = []
    for name in names:
        sub = ctx if name == ctx.exp else ctx.derive(exp=name)
        log.info(f"summary: {ctx.comp} / {name} ({sub.cfg.model.name} at {sub.cfg.data.img_size} px)")
        row = dict(comp=ctx.comp, experiment=name, **summarize(sub.cfg, n_outputs, seconds, speed))
        path = ctx.root / "summary" / ctx.comp / f"{name}.json"
        atomic_write_json(path, row)
        rows.append(row)
    print(format_table(rows), flush=True)
    log.info(f"summary -> {ctx.root / 'summary' / ctx.comp}/")
    return rows
