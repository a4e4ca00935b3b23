"""Shared entry point of the stage scripts: arguments, config, logging, one-line errors."""
import argparse
import logging
import os
import sys

from .errors import PipelineError, one_line


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--comp", default="digits", help="competition folder name under input/")
    p.add_argument("--exp", default="baseline", help="experiment: configs/exp/<exp>.yaml (optional for baseline)")
    p.add_argument("--fold", type=int, default=None, help="train only this fold")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. train.epochs=3")
    p.add_argument("--root", default=".", help="project root (holds input/, configs/ and the artifact folders)")
    return p


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
        from .pipeline import context

        extra = {k: v for k, v in vars(args).items() if k not in ("comp", "exp", "set", "root", "fold")}
        stage(context(args.comp, args.exp, args.set, args.root, args.fold, download, **extra))
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
