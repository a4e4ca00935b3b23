"""One typed config schema with every default in one place.

Resolution order (later wins): schema defaults < configs/<comp>.yaml < configs/exp/<exp>.yaml < CLI overrides
(`--set train.epochs=3`, Make's OVERRIDES). Each layer is validated on its own so an error names its source.
Sections are split by concept: competition, training, levels (prediction and after), schema, loading.
"""
from .base import Section
from .competition import METRICS, SUBMISSION_FORMATS, TASKS, Competition, Folds
from .levels import (CHECKPOINTS, META_FEATURES, PSEUDO_RULES, STACK_METHODS, TTA_MERGES, TTA_VIEWS, Distill,
                     Predict, Pseudo, Stack, Submit, XGBoost)
from .loading import deep_merge, nested, parse_overrides, read_yaml, resolve, sections, validate
from .schema import Config, Runtime
from .training import AUGMENT_PRESETS, HEADS, LOSSES, POOLS, SCHEDULERS, Data, Loss, LrFind, Mixup, Model, Train

__all__ = ["Section", "METRICS", "SUBMISSION_FORMATS", "TASKS", "Competition", "Folds", "CHECKPOINTS",
           "META_FEATURES", "PSEUDO_RULES", "STACK_METHODS", "TTA_MERGES", "TTA_VIEWS", "Distill", "Predict", "Pseudo",
           "Stack", "Submit", "XGBoost", "deep_merge", "nested", "parse_overrides", "read_yaml", "resolve", "sections",
           "validate", "Config", "Runtime", "AUGMENT_PRESETS", "HEADS", "LOSSES", "POOLS", "SCHEDULERS", "Data", "Loss",
           "LrFind", "Mixup", "Model", "Train"]
