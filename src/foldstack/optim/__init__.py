from .factory import create_optimizer, param_groups
from .schedule import Schedule, create_schedule

__all__ = ["create_optimizer", "param_groups", "Schedule", "create_schedule"]
