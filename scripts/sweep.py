"""`make sweep COMP=<name> SWEEP=<name>`: the trials of configs/sweep/<name>.yaml (a grid or a search) on Ray, each
an experiment configs/exp/<name>-<hash>.yaml with the usual artifacts, then the leaderboard, the best trials and
the `make stack` command that blends them. A rerun resumes: only what is missing runs.
    python scripts/sweep.py --comp digits --sweep smoke --cpus 2
    SWEEP_ADDRESS=<head>:6379 python scripts/sweep.py --comp flowers --sweep gpu-example"""
from foldstack.cli import run_stage
from foldstack.stages import sweep

if __name__ == "__main__":
    run_stage(sweep.run, __doc__, add_arguments=sweep.add_arguments)
