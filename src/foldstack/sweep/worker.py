"""A sweep task's setup on a Ray worker (logging, torch's threads) and its trial's Context, built through the stage
calls the make target hands over (`StageCalls`: this package imports neither the stages nor the pipeline). No Ray."""
import logging
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class StageCalls:
    """The pipeline as a task calls it, handed over by stages/sweep.py. Module-level functions, so Ray sends them
    to the workers by name."""
    context: Callable   # pipeline.context: (comp, exp, root=, fold=, download=) -> Context
    run: Callable       # pipeline.run: (ctx, stages) -> {stage: seconds}
    train: Callable     # the train stage: (ctx, on_epoch=) -> its models folder


def setup_worker(threads: int) -> None:
    """Logging as the scripts have it (Ray forwards it to the driver's terminal) and torch's threads = the task's
    CPUs: the same thread count gives the same float results as a `make` run with OMP_NUM_THREADS set to it."""
    import torch

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(threads)


def trial_context(calls: StageCalls, root: str, comp: str, exp: str, fold: int | None, threads: int, gpu: bool):
    """The Context `make train EXP=exp FOLD=fold` builds, with what never changes a result set for a task: no
    progress bars in the forwarded logs and, on a GPU, loader workers from the task's CPUs, not the machine's."""
    ctx = calls.context(comp, exp, root=root, fold=fold, download=True)
    runtime = {"progress": False}
    if gpu and ctx.cfg.runtime.num_workers == "auto":
        runtime["num_workers"] = max(threads - 1, 0)
    return ctx.derive(runtime=runtime)
