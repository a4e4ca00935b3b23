from .select import confidence, hard_targets, select_pseudo

__all__ = ["confidence", "hard_targets", "select_pseudo"]
