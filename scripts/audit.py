"""Leak audit of what is on disk for a competition: OOF, pseudo, stack and teacher rows vs their folds, and
byte-identical images across folds and train/test. Exit 1 if a check fails."""
from foldstack.cli import run_stage
from foldstack.stages import audit

if __name__ == "__main__":
    run_stage(audit.run, __doc__)
