"""`make plan COMP=<name> BUDGET=10m`: measure this machine, write the run that fits the budget as an experiment."""
from foldstack.cli import run_stage
from foldstack.stages import plan

if __name__ == "__main__":
    run_stage(plan.run, __doc__, add_arguments=plan.add_arguments)
