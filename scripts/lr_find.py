"""LR range test on fold 0: writes lr_find.png with the suggested learning rate."""
from foldstack.cli import run_stage
from foldstack.stages import lr_find

if __name__ == "__main__":
    run_stage(lr_find.run, __doc__, download=True)
