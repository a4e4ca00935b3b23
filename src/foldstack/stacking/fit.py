"""What fitting one level-2 method fold by fold gives: OOF and test predictions, what was fitted, and the fitted
level itself, which applies to new test predictions (a bundle's kernel) exactly as it made `test`."""
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class LevelFit:
    oof: np.ndarray                           # (N, K)
    test: np.ndarray                          # (M, K)
    info: dict = field(default_factory=dict)  # blend weights per fold, XGBoost iterations per fold; {}: nothing
    model: object = None                      # blend.BlendModel / meta.MetaModel: .predict(tests, meta) -> test
