"""`make weights [MODEL=<timm name>]`: pretrained ImageNet weights into weights/ (the Hugging Face hub cache
layout: upload the folder as a Kaggle dataset to train offline); without --model, the models of every configured
experiment that may load them. Prints repo, file, size and sha256 of each; needs no competition data.
    python scripts/weights.py --model resnet18
    python scripts/weights.py --comp digits --set model.name=convnext_tiny"""
import logging
import sys
from pathlib import Path

from foldstack.cli import parser
from foldstack.errors import PipelineError, one_line
from foldstack.stages import weights


def main(argv=None) -> None:
    p = parser(__doc__)
    p.add_argument("--model", default=None, help="a timm model name, with or without its tag (resnet18.a1_in1k)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    try:
        weights.run(Path(args.root).resolve(), args.comp, args.set, args.model)
    except PipelineError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
