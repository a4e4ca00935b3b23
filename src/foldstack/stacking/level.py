"""One level-2 method fitted on the level-1 folds, whichever kind it is (a blend or a meta-model): what the stack
stage fits for each method it compares, and what a bundle refits for the level it submits."""
from .blend import BLENDS, blend_cv
from .fit import LevelFit
from .meta import level_features, stack_cv


def uses_meta_features(method: str, cfg_stack, tabular_cols=()) -> bool:
    """Whether `method` sees meta features (stack.meta_features, competition.tabular_cols): meta-models do,
    blends never."""
    return method not in BLENDS and bool(cfg_stack.meta_features or tabular_cols)


def fit_level(method: str, oofs: list, tests: list, y, folds, comp, cfg_stack, oof_meta=None,
              test_meta=None) -> LevelFit:
    """oofs / tests: the level-1 predictions in input order; oof_meta / test_meta: their image meta features when
    `uses_meta_features`. The LevelFit's model applies the fit to other test predictions of the same inputs."""
    if method in BLENDS:
        return blend_cv(method, oofs, tests, y, folds, comp, cfg_stack.weights_objective, cfg_stack.seed)
    return stack_cv(method, level_features(oofs, oof_meta), level_features(tests, test_meta), y, folds, comp.task,
                    cfg_stack, n_prob_features=sum(o.shape[1] for o in oofs))
