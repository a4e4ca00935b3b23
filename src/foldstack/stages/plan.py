"""`make plan COMP=<name> BUDGET=10m`: measure this machine on a short ladder of candidates and write the run
that fits the budget as an experiment, configs/exp/<comp>-budget-<B>.yaml (budget/experiment.py). An existing
plan is reused, never redone: delete the file to plan again."""
from ..budget.experiment import add_arguments, plan_experiment

__all__ = ["add_arguments", "run"]


def run(ctx):
    """Plan (or reuse the plan); returns (experiment name, its YAML)."""
    return plan_experiment(ctx)
