"""Stage 03: OOF predictions for every train row + fold-averaged test predictions."""
from foldstack.cli import run_stage
from foldstack.stages import predict

if __name__ == "__main__":
    run_stage(predict.run, __doc__)
