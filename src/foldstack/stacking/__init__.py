"""Level 2 on the level-1 folds: blends, meta-models and threshold search. numpy/scipy/sklearn/xgboost only
(no torch), so stacking runs where no training stack is installed."""
