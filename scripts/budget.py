"""`make all COMP=<name> BUDGET=10m`: plan once (`make plan`), run the whole pipeline with the plan, report
planned against actual seconds and, with --labels, the score."""
from foldstack.cli import run_stage
from foldstack.stages import budget

if __name__ == "__main__":
    run_stage(budget.run, __doc__, add_arguments=budget.add_arguments)
