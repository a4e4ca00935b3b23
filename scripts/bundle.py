"""What the submission uses as a Kaggle dataset (the project and its pinned wheels, every fold's weights, the
resolved configs, the stack's fitted level 2) and a kernel that rebuilds submission.csv from it offline:
bundle/<comp>/<hash>/dataset/ and kernel/, printed last. Push it with scripts/kaggle_push.py (make kaggle-push).
    python scripts/bundle.py --comp digits --kaggle-user me
    python scripts/bundle.py --comp aerial-cactus --competition aerial-cactus-identification --gpu"""
from foldstack.cli import run_stage
from foldstack.stages import bundle

if __name__ == "__main__":
    run_stage(bundle.run, __doc__, add_arguments=bundle.add_arguments)
