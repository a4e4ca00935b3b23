"""`make download COMP=<slug>`: the Kaggle competition into input/<slug>/ (kaggle CLI, zips unpacked), then what
`make all` would infer from it (nothing is written to configs/ here)."""
import argparse
import sys
from pathlib import Path

import yaml

from foldstack.discover import discover_competition
from foldstack.errors import PipelineError, one_line
from foldstack.kaggle import download


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--comp", required=True, help="Kaggle competition slug (kaggle.com/competitions/<slug>)")
    p.add_argument("--root", default=".", help="project root (input/ is under it)")
    args = p.parse_args(argv)
    try:
        dest = download(args.comp, Path(args.root))
        print(f"input/{args.comp}: {', '.join(sorted(x.name for x in dest.iterdir()))}")
        setup = discover_competition(dest)
        print(f"make all COMP={args.comp} would infer (written to configs/{args.comp}.yaml on the first run):")
        print(yaml.safe_dump({"competition": setup}, sort_keys=False, allow_unicode=True), end="")
    except PipelineError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
