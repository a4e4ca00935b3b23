"""Stage 02: train every fold, or only --fold K; resumes an interrupted fold."""
from foldstack.cli import run_stage
from foldstack.stages import train

if __name__ == "__main__":
    run_stage(train.run, __doc__, add_arguments=train.add_arguments, download=True)
