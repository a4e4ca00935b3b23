"""`make report`: a static HTML view of what is on disk for a competition (reports/<comp>/index.html).

collect      the prediction folders, stacks and pseudo-label sets on disk, their models, the level to submit
leaderboard  one row per experiment, TTA variant, blend, stacker, pseudo round and student
experiment   the analysis of a level's OOF rows (confusion, per-class scores, calibration, distribution, mistakes)
plots        the PNGs and thumbnails; html: sortable tables and pages, no external asset
pages        the index and the level pages, each with its tables as CSV beside it
publish      the folder rebuilt in a temporary folder and swapped in, so a crash never leaves half of one
"""
