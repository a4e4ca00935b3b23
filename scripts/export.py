"""Every trained fold of the experiment to ONNX (uint8 NCHW in, probabilities out, normalised inside), checked
with ONNX Runtime against PyTorch on test images at data.img_size and a second size, with images/s of both.
Writes export/<comp>/<exp>/<key>/fold<k>.onnx and export.json.
    python scripts/export.py --comp digits --exp baseline
    python scripts/export.py --comp digits --sizes 64 96"""
from foldstack.cli import run_stage
from foldstack.stages import export

if __name__ == "__main__":
    run_stage(export.run, __doc__, add_arguments=export.add_arguments)
