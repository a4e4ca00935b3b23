"""Benchmark (`make bench COMP=<name>`): how close the pipeline runs to the model's compute ceiling, for the
configured model, image size, batch size and device. Not a test: it prints a table.

  ceiling    one real batch already on the device, normalised, fed again and again: forward + backward +
             optimizer step (train), forward under inference_mode (inference); nothing else. (A real batch, not
             random numbers: on CPU random tensors run a few % slower through the same model.)
  pipeline   fold 0's real loader (decoded-image cache or JPEG decode, augmentation, collation, host->device copy,
             normalisation) feeding the same step (train), and `predict_probs` with the configured TTA views, one
             validation batch at a time (inference).
  ratio      pipeline / ceiling: below 1 is time lost outside the model (usually the loader).
Ceiling and pipeline are timed in short turns (--rounds x --steps batches each, after --warmup), and the ratio is
the median over rounds of pipeline / ceiling speed in the same round, so a burst of load on a shared machine does
not decide it; --epoch also times one full training epoch.
    python scripts/bench.py --comp aerial-cactus --set data.img_size=32 data.batch_size=128 --steps 30
"""
import itertools
import resource
import tempfile
from pathlib import Path

from foldstack.cli import run_stage
from foldstack.lineage import load_folds
from foldstack.utils.timing import interleaved, seconds_of


def forever(loader):
    return itertools.chain.from_iterable(itertools.repeat(loader))


def bench(ctx) -> None:
    import torch

    from foldstack.data.device import to_device
    from foldstack.engine.fold import build_fold
    from foldstack.engine.inference import predict_probs, tta_views
    from foldstack.engine.step import batch_to_device, forward_backward, optimizer_step
    from foldstack.engine.training import train_one_epoch

    cfg, args = ctx.cfg, ctx.args
    folds = load_folds(ctx).folds
    with tempfile.TemporaryDirectory() as tmp:
        f = build_fold(cfg, ctx.images, ctx.targets, folds, 0, Path(tmp))
        batch, size, device, views = cfg.data.batch_size, cfg.data.img_size, f.device, tta_views(cfg)
        # the ceiling's input: one real batch, already on the device (random tensors run at another speed on CPU)
        x, target = next(iter(f.train_loader))
        x, target = to_device(x, device, cfg.data, f.channels_last), target.to(device)
        f.model.train()

        def train_step(b):
            forward_backward(f, cfg, *batch_to_device(f, cfg, *b))
            optimizer_step(f, cfg)

        train, train_ratio = interleaved({"ceiling": (train_step, itertools.repeat((x, target)), batch),
                             "pipeline": (train_step, forever(f.train_loader), batch)},
                            args.warmup, args.steps, args.rounds, device)

        model = f.model.eval()
        per_call = min(batch * 2 * len(views), cfg.runtime.infer_batch)  # what predict_probs feeds the model
        x_inf = x.repeat(-(-per_call // len(x)), 1, 1, 1)[:per_call]

        @torch.inference_mode()
        def infer_step(b):
            model(b)

        def predict_step(b):  # one loader batch through predict_probs: TTA views, merge, probabilities to host
            predict_probs([model], [b], cfg, device, views)

        inference, inference_ratio = interleaved({"ceiling": (infer_step, itertools.repeat(x_inf), per_call),
                                 "pipeline": (predict_step, forever(f.valid_loader), batch * 2 * len(views))},
                                args.warmup, args.steps, args.rounds, device)
        epoch = None
        if args.epoch:
            f.model.train()
            epoch = seconds_of(lambda: train_one_epoch(f, cfg, 0, 0, 0), device=device)

    rows = [("train", "ceiling (batch on the device)", train["ceiling"], 1.0),
            ("train", f"pipeline ({f.train_loader.num_workers} workers)", train["pipeline"],
             train_ratio["pipeline"]),
            ("inference", f"ceiling (batch on the device, {per_call} per call)", inference["ceiling"], 1.0),
            ("inference", f"pipeline (fold 0 valid, {len(views)} view(s))", inference["pipeline"],
             inference_ratio["pipeline"])]
    print(f"{ctx.comp}: {cfg.model.name} at {size}px, batch {batch}, on {device} "
          f"({torch.get_num_threads()} threads)\n")
    print("| | measured | images/s | ratio of the ceiling (median of rounds) |\n|---|---|---|---|")
    for what, how, speed, ratio in rows:
        print(f"| {what} | {how} | {speed:.0f} | {ratio:.2f} |")
    peak = (torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    print(f"\npeak {'GPU' if device.type == 'cuda' else 'host (RSS)'} memory: {peak:.2f} GiB")
    if epoch is not None:
        print(f"one training epoch (fold 0, {len(f.train_loader.dataset)} images): {epoch:.1f} s "
              f"({len(f.train_loader.dataset) / epoch:.0f} images/s)")


def add_arguments(p):
    p.add_argument("--steps", type=int, default=2, help="timed batches per round and figure")
    p.add_argument("--rounds", type=int, default=25, help="rounds: ceiling and pipeline are timed in turns")
    p.add_argument("--warmup", type=int, default=3, help="untimed batches before each figure")
    p.add_argument("--epoch", action="store_true", help="also time one full training epoch")


if __name__ == "__main__":
    run_stage(bench, __doc__, add_arguments=add_arguments)
