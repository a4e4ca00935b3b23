"""`make report`: a static HTML report of everything on disk for the competition, reports/<comp>/index.html.

A leaderboard of every level (experiment, TTA variant, blend, stacker, pseudo round, student; the level `make
submit` would submit marked) and a page per experiment and stack output; the pieces are in src/foldstack/report/.
Tables are also CSVs and images PNGs beside their page, linked relatively, so the folder opens from disk and can be
zipped. The level to submit is resolved as `make submit` resolves it (lineage.py, same EXP and OVERRIDES). Not a
versioned artifact: rebuilt whole on every run, in a temporary folder swapped in when complete. Prints the index
path last."""
import logging

from ..artifacts import stage_root
from ..errors import PipelineError
from ..lineage import models_round, submission_source
from ..report.collect import collect
from ..report.leaderboard import leaderboard
from ..report.pages import write_report
from ..report.publish import rebuilt

log = logging.getLogger("foldstack")


def submitted_source(ctx):
    """(the predictions folder `make submit` would submit with this config, "") or (None, why not)."""
    try:
        return submission_source(ctx)[1], ""
    except PipelineError as e:
        return None, str(e)


def round_of(ctx, path):
    """The pseudo-label round of the models behind a predictions or stack folder (their manifests hold it)."""
    try:
        return models_round(ctx, path)
    except PipelineError:
        return None


def run(ctx):
    submitted, why_not = submitted_source(ctx)
    disk = collect(ctx, lambda path: round_of(ctx, path), submitted, why_not)
    baseline = ctx if ctx.exp == "baseline" else ctx.derive(exp="baseline")
    board = leaderboard(disk, ctx, baseline.cfg)
    final = stage_root(ctx.root, "report", ctx.comp)
    with rebuilt(final) as tmp:
        write_report(tmp, ctx, disk, board)
    log.info(f"report: {len(board)} level(s), {len(disk.experiments)} experiment page(s), {len(disk.stacks)} "
             f"stack(s) -> {final}/")
    index = final / "index.html"
    print(index, flush=True)
    return index
