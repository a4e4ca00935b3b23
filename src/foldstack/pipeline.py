"""The stages called from Python: the one way the planner, reports and sweeps run the pipeline in-process.

    from foldstack import pipeline
    ctx = pipeline.context("aerial-cactus", exp="baseline", overrides=["train.epochs=3"])
    seconds = pipeline.run(ctx, ["folds", "train", "oof", "stack", "submit"])

Each stage is the function its script runs (`scripts/0*_*.py`), on a Context built as the scripts build it, so a
stage called here writes the same artifacts and raises the same PipelineError (one line) as `make <stage>`."""
import logging
import time
from pathlib import Path

from .context import Context, load_config

log = logging.getLogger("foldstack")

STAGES = ("folds", "train", "oof", "stack", "submit")  # `make submit`'s chain, in order


def stage_function(name: str):
    from .stages import folds, predict, stack, submit, train

    functions = dict(folds=folds.run, train=train.run, oof=predict.run, stack=stack.run, submit=submit.run)
    if name not in functions:
        raise ValueError(f"unknown stage {name!r}: expected one of {', '.join(functions)}")
    return functions[name]


def context(comp: str, exp: str = "baseline", overrides: list[str] | tuple = (), root: Path | str = ".",
            fold: int | None = None, download: bool = False, layer: dict | None = None, **args) -> Context:
    """The Context of `--comp comp --exp exp --set overrides` (cli.run_stage uses it too); `args` become ctx.args
    attributes. layer: the experiment's config layer in memory, before its file is written (`make plan`'s race). download: as `make train`. The sample submission is checked now, so a changed download stops the
    first stage, not `make oof` hours later."""
    import argparse

    root = Path(root).resolve()
    namespace = argparse.Namespace(comp=comp, exp=exp, set=list(overrides), root=str(root), fold=fold, **args)
    cfg = load_config(root, comp, exp, list(overrides), download=download, layer=layer)
    ctx = Context(root=root, comp=comp, exp=exp, cfg=cfg, fold=fold, args=namespace, download=download)
    ctx.test  # noqa: B018
    return ctx


def run(ctx: Context, stages=STAGES, on_stage=None, stage_args: dict | None = None) -> dict:
    """Run the stages in order on ctx; returns {stage: wall seconds}. on_stage(name, seconds) after each.
    stage_args: {stage: keyword arguments of its run}, e.g. {"train": {"budget": FoldBudget(...)}}."""
    seconds = {}
    for name in stages:
        t0 = time.time()
        stage_function(name)(ctx, **(stage_args or {}).get(name, {}))
        seconds[name] = time.time() - t0
        if on_stage is not None:
            on_stage(name, seconds[name])
    return seconds
