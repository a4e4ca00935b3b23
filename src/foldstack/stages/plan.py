"""`make plan COMP=<name> BUDGET=10m`: write the run that fits the budget on this machine as an experiment,
configs/exp/<comp>-budget-<B>.yaml (budget/experiment.py); an existing plan is reused: delete it to plan again."""
from ..budget.experiment import add_arguments
from ..budget.experiment import plan_experiment as run  # plan, or reuse the plan: (experiment name, its YAML)

__all__ = ["add_arguments", "run"]
