"""What a configured model costs, without training it or reading an image: parameters, FLOPs of one image and
measured images/s (`make summary`, stages/summary.py, prints and writes it; see that module for the meaning of
each figure)."""
import logging

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ..models.factory import create_model
from ..models.net import set_backbone_trainable
from ..utils.io import stable_hash
from ..utils.timing import per_call_seconds
from .runtime import autocast, resolve_device, use_channels_last

log = logging.getLogger("foldstack")

WARMUP, MIN_BATCHES = 2, 3


def count_flops(model, img_size: int, channels: int = 3, device=None) -> int:
    """FLOPs of one forward pass of one (channels, img_size, img_size) image in eval mode (FlopCounterMode:
    a multiply-add counts 2). The model's training mode is restored."""
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


def images_per_second(step, batch: int, device, seconds: float) -> float:
    """step() processes `batch` images: timed after WARMUP calls for about `seconds`, at least MIN_BATCHES calls."""
    times = per_call_seconds(step, repeats=MIN_BATCHES, warmup=WARMUP, device=device, min_seconds=seconds)
    return len(times) * batch / sum(times)


def summarize(cfg, n_outputs: int, seconds: float = 2.0, speed: bool = True) -> dict:
    """The summary of cfg's model (random weights; see stages/summary.py) as a JSON-able dict."""
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
    flops = count_flops(model, size, cfg.model.in_chans, device=device)
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
        x = torch.randn(n, cfg.model.in_chans, size, size, device=device)
        return x.contiguous(memory_format=torch.channels_last) if layout else x

    x_infer, x_train = batch_of(out["infer_batch"]), batch_of(out["train_batch"])
    target = (torch.randint(0, n_outputs, (out["train_batch"],), device=device) if task == "multiclass"
              else torch.randint(0, 2, (out["train_batch"], n_outputs), device=device).float())

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
        out["infer_images_per_s"] = images_per_second(infer, out["infer_batch"], device, seconds)
        model.train()
        out["train_images_per_s"] = images_per_second(train, out["train_batch"], device, seconds)
    except torch.cuda.OutOfMemoryError:
        log.warning(f"{cfg.model.name}: out of GPU memory at batch {out['infer_batch']} (inference) / "
                    f"{out['train_batch']} (train): speed not measured")
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out
