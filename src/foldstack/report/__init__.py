"""`make report`: a static HTML view of what is on disk for a competition (reports/<comp>/index.html).

collect      every prediction folder, stack and pseudo-label set on disk, the models behind them, and the level
             `make submit` would submit (lineage.py)
leaderboard  one row per experiment, TTA variant, blend, stacker, pseudo round and student (stacking/report.py)
experiment   per-experiment analysis of the OOF rows: confusion matrix, per-class (per-tag) scores, calibration,
             class distribution, worst mistakes
plots        the PNGs (matplotlib, Agg) and the thumbnails of the worst mistakes
html         tables (sortable, the CSV's values in data attributes) and pages, no external asset
pages        the index and the experiment pages, each with its tables as CSV beside it
publish      the report folder rebuilt in a temporary folder and swapped in, so a crash never leaves half of one
"""
