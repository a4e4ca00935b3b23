"""Stage 06: write and validate the submission, copy it to ./submission.csv."""
from foldstack.cli import run_stage
from foldstack.stages import submit

if __name__ == "__main__":
    run_stage(submit.run, __doc__)
