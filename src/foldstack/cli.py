"""Shared entry point of the stage scripts: arguments, config, logging, one-line errors."""
import argparse
import logging
import os
import sys
from pathlib import Path

from .errors import PipelineError


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--comp", default="digits", help="competition folder name under input/")
    p.add_argument("--exp", default="baseline", help="experiment: configs/exp/<exp>.yaml (optional for baseline)")
    p.add_argument("--fold", type=int, default=None, help="train only this fold")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. train.epochs=3")
    p.add_argument("--root", default=".", help="project root (holds input/, configs/ and the artifact folders)")
    return p


def one_line(err: BaseException) -> str:
    """DataLoader workers re-raise with the worker traceback in the message: keep its last line."""
    lines = [ln for ln in str(err).strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else err.__class__.__name__
    return last.split("PipelineError: ", 1)[-1]


def last_output_line(proc) -> str:
    """The last non-empty line a finished subprocess printed (stderr, then stdout): what a one-line error quotes."""
    said = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    return said[-1] if said else "no output"


def run_stage(stage, description: str, argv=None, add_arguments=None, download: bool = False) -> None:
    """Parse arguments, build the context and run `stage(ctx)`; PipelineError -> one line, exit 1. `download`:
    the stage may fetch the model's pretrained weights into weights/ (training); the others read that cache."""
    p = parser(description)
    if add_arguments:
        add_arguments(p)
    args = p.parse_args(argv)
    quiet = int(os.environ.get("RANK", 0)) > 0  # torchrun: rank 0 speaks for all
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="[%(asctime)s] %(message)s",
                        datefmt="%H:%M:%S")
    try:
        from .context import Context, load_config

        root = Path(args.root).resolve()
        cfg = load_config(root, args.comp, args.exp, args.set, download=download)
        ctx = Context(root=root, comp=args.comp, exp=args.exp, cfg=cfg, fold=args.fold, args=args, download=download)
        ctx.test  # noqa: B018  every stage checks the sample submission (columns, ids, images), so a changed
        # download stops the first stage, not `make oof` hours later
        stage(ctx)
    except PipelineError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:  # a full disk or read-only folder met outside the atomic writers: one line too
        from .utils.io import write_error

        err = write_error(e, e.filename or "an output file")
        if err is None:
            raise
        print(f"error: {one_line(err)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
