"""`make audit`'s checks, one concept a module (the stage, stages/audit.py, runs them in order):
auditor (shared state and row comparisons), splits (folds and per-fold classes), predictions (models, OOF rows,
distillation), levels (stacks, pseudo-label sets), duplicate_checks (byte-identical images); duplicates (content
hashes, also for folds.dedupe) and report (the findings, printed and as JSON)."""
