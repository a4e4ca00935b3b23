"""Stage 05: blend the chosen experiments' OOF/test predictions."""
from foldstack.cli import run_stage
from foldstack.stages import stack

if __name__ == "__main__":
    run_stage(stack.run, __doc__)
