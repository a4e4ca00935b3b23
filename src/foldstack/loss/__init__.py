"""Losses: one factory over CE/BCE, focal, OHEM, weighted, Lovasz and distillation (import from the defining module)."""
