"""One training epoch, wall time: this pipeline against timm's train.py on the same rows and settings.

Both train the configured model on fold 0's training rows for one epoch and then validate on fold 0's validation
rows, from a cold start (process launch to exit), with the configured image size, batch size, optimizer, LR,
memory layout (runtime.channels_last -> timm's --channels-last) and device. timm reads an ImageFolder of links to the same images; its augmentation is set to the nearest of ours
(full-image RandomResizedCrop = resize, horizontal flip, no colour jitter). Ours runs `02_train.py` in a scratch
project with `train.epochs=1` (the decoded-image cache is built there first, timed apart).
The pip package of timm does not ship train.py: pass the file from timm's repository with --timm-train.
    python scripts/bench_timm.py --comp aerial-cactus --timm-train ../timm/train.py --timm-workers 0 2
"""
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from foldstack.cli import run_stage
from foldstack.lineage import load_folds
from foldstack.utils.io import remove_tree
from foldstack.utils.timing import seconds_of


def image_folder(ctx, folds, out: Path) -> None:
    """out/{train,validation}/<class>/<file>: links to fold 0's training and validation images."""
    labels = ctx.targets.argmax(1) if ctx.targets.shape[1] > 1 else ctx.targets[:, 0].astype(int)
    for path, fold, label in zip(ctx.train.paths, folds, labels):
        link = out / ("validation" if fold == 0 else "train") / f"class{label}" / Path(path).name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path(path).resolve())


def timed(cmd: list, cwd=None) -> float:
    def run():
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"failed: {' '.join(map(str, cmd))}\n{proc.stderr[-3000:]}")

    return seconds_of(run)


def bench(ctx) -> None:
    cfg, args, repo = ctx.cfg, ctx.args, Path(__file__).resolve().parents[1]
    folds = load_folds(ctx).folds
    n_classes = max(ctx.targets.shape[1], 2)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        image_folder(ctx, folds, tmp / "data")
        for workers in args.timm_workers:
            cmd = [sys.executable, args.timm_train, "--data-dir", tmp / "data", "--model", cfg.model.name,
                   "--num-classes", n_classes, "--img-size", cfg.data.img_size, "-b", cfg.data.batch_size,
                   "--epochs", 1, "--opt", cfg.train.optimizer, "--lr", cfg.train.lr,
                   "--weight-decay", cfg.train.weight_decay, "--sched", "cosine", "--warmup-epochs", 0,
                   "--scale", 1, 1, "--ratio", 1, 1, "--hflip", 0.5, "--color-jitter", 0,
                   "--workers", workers, "--device", args.device, "--no-prefetcher", "--output", tmp / "timm",
                   "--checkpoint-hist", 1, "--log-interval", 1000] + (["--channels-last"] if cfg.runtime.channels_last is True
                                                                       else [])
            runs[f"timm train.py ({workers} workers)"] = (list(map(str, cmd)), tmp)
        project = tmp / "ours"
        for name in ("configs", "input", "folds"):
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            (project / name).symlink_to((ctx.root / name).resolve())
        ours = list(map(str, [sys.executable, repo / "scripts" / "02_train.py", "--root", project, "--comp", ctx.comp,
                              "--exp", ctx.exp, "--fold", 0, "--set", *args.set, "train.epochs=1",
                              "runtime.progress=false"]))
        cache = timed(ours + ["--prepare"])  # builds the decoded-image cache, trains nothing
        runs[f"foldstack 02_train.py (runtime.num_workers={cfg.runtime.num_workers})"] = (ours, None)
        seconds = {name: [] for name in runs}
        for _ in range(args.repeat):  # in turns, so load drifting on a shared machine hits every run alike
            for name, (cmd, cwd) in runs.items():
                remove_tree(project / "models")
                seconds[name].append(timed(cmd, cwd))
    print(f"{ctx.comp}: {cfg.model.name} at {cfg.data.img_size}px, batch {cfg.data.batch_size}, "
          f"{(folds != 0).sum()} train + {(folds == 0).sum()} validation images, one epoch, on {args.device}\n")
    print("| run | wall time, launch to exit (s): median | each run |\n|---|---|---|")
    for name, times in seconds.items():
        print(f"| {name} | {np.median(times):.1f} | {', '.join(f'{t:.1f}' for t in times)} |")
    print(f"\n(foldstack's decoded-image cache took {cache:.1f} s before that, with a process start: once per data "
          f"set and size)")


def add_arguments(p):
    p.add_argument("--timm-train", required=True, help="timm's train.py (from its repository)")
    p.add_argument("--timm-workers", type=int, nargs="+", default=[0, 2], help="timm --workers values to time")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=3, help="runs of each, in turns")


if __name__ == "__main__":
    run_stage(bench, __doc__, add_arguments=add_arguments)
