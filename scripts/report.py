"""A static HTML report of what is on disk for the competition: the leaderboard of every level (the one
`make submit` would submit marked) and a page per experiment (curves, confusion matrix, per-class scores,
calibration, class distribution, worst OOF mistakes), every table also as CSV. Writes reports/<comp>/ and prints
the path of its index.html.
    python scripts/report.py --comp digits
    python scripts/report.py --comp digits --set "stack.experiments=[baseline,ema]" (as make submit is run)"""
from foldstack.cli import run_stage
from foldstack.stages import report

if __name__ == "__main__":
    run_stage(report.run, __doc__)
