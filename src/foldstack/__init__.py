"""foldstack: a leak-free k-fold / OOF / stacking pipeline for Kaggle image classification."""

__version__ = "0.1.0"
