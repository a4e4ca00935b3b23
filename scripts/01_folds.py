"""Stage 01: split train rows into folds (stratified, group-aware, iterative for multilabel)."""
from foldstack.cli import run_stage
from foldstack.stages import folds

if __name__ == "__main__":
    run_stage(folds.run, __doc__)
