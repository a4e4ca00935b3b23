"""Benchmark (`make bench COMP=<name>`): how close the pipeline runs to the model's compute ceiling, for the
configured model, image size, batch size and device. Not a test: it prints a table.

  ceiling    synthetic tensors already on the device: forward + backward + optimizer step (train), forward
             under inference_mode (inference); nothing else.
  pipeline   fold 0's real loader (JPEG decode, augmentation, collation, host->device copy) feeding the same step
             (train), and `predict_probs` with the configured TTA views on the validation rows (inference).
  ratio      pipeline / ceiling: below 1 is time lost outside the model (usually the loader).
Train ceiling and pipeline are timed in turns (--rounds x --steps batches each, after --warmup), so a load
change on a shared machine hits both; --epoch also times one full training epoch.
    python scripts/bench.py --comp aerial-cactus --set data.img_size=32 data.batch_size=128 --steps 30
"""
import itertools
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from foldstack.cli import run_stage
from foldstack.stages.folds import load_folds


def synced(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def interleaved(steps: dict, warmup: int, n: int, rounds: int, device) -> dict:
    """{name: seconds for n x rounds calls}: the candidates (name -> (step, batch iterator)) are timed in turns,
    n calls each per round after `warmup` untimed ones, so load drifting on a shared machine hits all alike."""
    seconds = dict.fromkeys(steps, 0.0)
    for name, (step, batches) in steps.items():
        for batch in itertools.islice(batches, warmup):
            step(batch)
    for _ in range(rounds):
        for name, (step, batches) in steps.items():
            t0 = synced(device)
            for batch in itertools.islice(batches, n):
                step(batch)
            seconds[name] += synced(device) - t0
    return seconds


def bench(ctx) -> None:
    import torch

    from foldstack.engine import build_fold, forward_backward, optimizer_step, predict_probs, train_one_epoch
    from foldstack.engine import tta_views

    cfg, args = ctx.cfg, ctx.args
    _, _, folds = load_folds(ctx)
    with tempfile.TemporaryDirectory() as tmp:
        f = build_fold(cfg, ctx.images, ctx.targets, folds, 0, Path(tmp))
        batch, size, device = cfg.data.batch_size, cfg.data.img_size, f.device
        n_views = len(tta_views(cfg))
        x = torch.randn(batch, 3, size, size, device=device)
        target = torch.from_numpy(ctx.targets[:batch].astype(np.float32))
        f.model.train()

        def train_step(b):
            forward_backward(f, cfg, *b)
            optimizer_step(f, cfg)

        loader = itertools.chain.from_iterable(itertools.repeat(f.train_loader))
        train = interleaved({"ceiling": (train_step, itertools.repeat((x, target))), "pipeline": (train_step, loader)},
                            args.warmup, args.steps, args.rounds, device)
        ceiling, pipeline = train["ceiling"], train["pipeline"]

        model = f.model.eval()
        n_inf = min(batch * 2 * n_views, cfg.runtime.infer_batch)  # what predict_probs feeds the model per call
        x_inf = torch.randn(n_inf, 3, size, size, device=device)

        @torch.inference_mode()
        def infer_step(b):
            model(b)

        inf_ceiling = interleaved({"ceiling": (infer_step, itertools.repeat(x_inf))}, args.warmup, args.steps,
                                  args.rounds, device)["ceiling"]
        n_valid = len(f.valid_loader.dataset)
        predict_probs([model], f.valid_loader, cfg, device, tta_views(cfg), desc="warm-up")
        t0 = synced(device)
        predict_probs([model], f.valid_loader, cfg, device, tta_views(cfg), desc="inference")
        inf_pipeline = synced(device) - t0
        epoch = None
        if args.epoch:
            f.model.train()
            t0 = synced(device)
            train_one_epoch(f, cfg, 0, 0, 0)
            epoch = synced(device) - t0

    timed_steps = args.steps * args.rounds
    rows = [("train", "ceiling (synthetic)", timed_steps * batch / ceiling, 1.0),
            ("train", f"pipeline ({f.train_loader.num_workers} workers)", timed_steps * batch / pipeline,
             ceiling / pipeline),
            ("inference", f"ceiling (synthetic, {n_inf} per call)", timed_steps * n_inf / inf_ceiling, 1.0),
            ("inference", f"pipeline (fold 0 valid, {n_views} view(s))", n_valid * n_views / inf_pipeline,
             (n_valid * n_views / inf_pipeline) / (timed_steps * n_inf / inf_ceiling))]
    print(f"{ctx.comp}: {cfg.model.name} at {size}px, batch {batch}, on {device} "
          f"({torch.get_num_threads()} threads)\n")
    print("| | measured | images/s | ratio of the ceiling |\n|---|---|---|---|")
    for what, how, speed, ratio in rows:
        print(f"| {what} | {how} | {speed:.0f} | {ratio:.2f} |")
    peak = (torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    print(f"\npeak {'GPU' if device.type == 'cuda' else 'host (RSS)'} memory: {peak:.2f} GiB")
    if epoch is not None:
        print(f"one training epoch (fold 0, {len(f.train_loader.dataset)} images): {epoch:.1f} s "
              f"({len(f.train_loader.dataset) / epoch:.0f} images/s)")


def add_arguments(p):
    p.add_argument("--steps", type=int, default=10, help="timed batches per round and figure")
    p.add_argument("--rounds", type=int, default=4, help="rounds: ceiling and pipeline are timed in turns")
    p.add_argument("--warmup", type=int, default=3, help="untimed batches before each figure")
    p.add_argument("--epoch", action="store_true", help="also time one full training epoch")


if __name__ == "__main__":
    run_stage(bench, __doc__, add_arguments=add_arguments)
