"""foldstack: a leak-free k-fold / OOF / stacking pipeline for Kaggle image classification."""
import os

# albumentations checks PyPI for a newer version on import: on an offline machine (Kaggle code competitions)
# it warns and waits. Set before any submodule can import it.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
