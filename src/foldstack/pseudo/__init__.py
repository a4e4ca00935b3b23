"""Pseudo-label selection from a stack or experiment (import from the defining module)."""
