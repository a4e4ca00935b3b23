"""One typed config schema with every default in one place.

Resolution order (later wins): schema defaults < configs/<comp>.yaml < configs/exp/<exp>.yaml < CLI overrides
(`--set train.epochs=3`, Make's OVERRIDES). Each layer is validated on its own so an error names its source.
Sections are split by concept: competition, training, levels (prediction and after), schema, loading.
"""
