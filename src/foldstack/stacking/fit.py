"""What fitting one level-2 method fold by fold gives: OOF predictions (row i from the fit that did not see
i's fold), test predictions, and what was fitted."""
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class LevelFit:
    oof: np.ndarray                           # (N, K)
    test: np.ndarray                          # (M, K)
    info: dict = field(default_factory=dict)  # blend weights per fold, XGBoost iterations per fold; {}: nothing
