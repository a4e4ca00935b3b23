"""Model summary: parameters, FLOPs at data.img_size, feature width and measured images/s (inference and a
forward + backward training step) of the experiment's model; no trained model or image needed. Prints a table and
writes summary/<comp>/<exp>.json.
    python scripts/summary.py --comp digits --exp small
    python scripts/summary.py --comp digits --all-experiments --seconds 1"""
from foldstack.cli import run_stage
from foldstack.stages import summary

if __name__ == "__main__":
    run_stage(summary.run, __doc__, add_arguments=summary.add_arguments)
