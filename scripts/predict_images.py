"""Top-k classes of an image file or of every image under a folder, from the experiment's fold models (averaged,
TTA as configured): a CSV under predictions/<comp>/<exp>/ (or --out)."""
from foldstack.cli import run_stage
from foldstack.stages import predict_images

if __name__ == "__main__":
    run_stage(predict_images.run, __doc__, add_arguments=predict_images.add_arguments)
