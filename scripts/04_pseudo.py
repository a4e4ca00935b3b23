"""Stage 04: a pseudo-label set for round ROUND from the stack's (or an experiment's) test predictions."""
from foldstack.cli import run_stage
from foldstack.stages import pseudo

if __name__ == "__main__":
    run_stage(pseudo.run, __doc__, add_arguments=lambda p: p.add_argument("--round", type=int, default=1))
