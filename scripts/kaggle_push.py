"""`make kaggle-push`: the latest bundle of COMP (or --bundle) to Kaggle: `kaggle datasets create` (or `version` when
the dataset exists), then `kaggle kernels push` once the dataset is ready. The kaggle CLI reads its own
credentials (checked first); --dry-run prints the commands only.
    python scripts/kaggle_push.py --comp digits
    python scripts/kaggle_push.py --bundle bundle/digits/<hash> --version"""
import argparse
import shlex
import sys
from pathlib import Path

from foldstack.bundle.push import latest_bundle, push
from foldstack.errors import PipelineError, one_line
from foldstack.kaggle import kaggle_executable


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--comp", default="digits", help="competition folder name (its latest bundle is pushed)")
    p.add_argument("--root", default=".", help="project root (bundle/ is under it)")
    p.add_argument("--bundle", help="the bundle folder to push (default: the latest one of --comp)")
    exists = p.add_mutually_exclusive_group()
    exists.add_argument("--create", dest="exists", action="store_false", default=None,
                        help="create the dataset (default: asked of `kaggle datasets status`)")
    exists.add_argument("--version", dest="exists", action="store_true", help="a new version of the dataset")
    p.add_argument("--wait", type=float, default=600, help="seconds to wait for the dataset to be ready (600)")
    p.add_argument("--cli", help="the kaggle executable (default: the one of this environment)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = p.parse_args(argv)
    try:
        bundle = Path(args.bundle) if args.bundle else latest_bundle(Path(args.root), args.comp)
        cli = Path(args.cli) if args.cli else kaggle_executable()
        for command in push(bundle, cli, args.exists, args.wait, args.dry_run):
            print(shlex.join(command))
    except PipelineError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
