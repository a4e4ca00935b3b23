"""Stage 01: split train rows into folds (StratifiedKFold / GroupKFold)."""
from foldstack.cli import run_stage
from foldstack.stages import folds

if __name__ == "__main__":
    run_stage(folds.run, __doc__)
