"""Optimizers (timm) and LR schedules, stepped per update (import from the defining module)."""
