"""Stage 06: the blended test predictions in the competition's format, validated, versioned, copied to ./submission.csv."""
import logging

from ..artifacts import artifact_path, input_ref, is_complete, staging, write_manifest
from ..config import sections
from ..data.table import output_names
from ..errors import PipelineError
from ..submission import build_submission, validate_submission
from ..utils.io import atomic_copy, atomic_write_csv, stable_hash
from .predict import read_predictions
from .stack import stack_dir

log = logging.getLogger("foldstack")


def run(ctx):
    source, _ = stack_dir(ctx)
    if not is_complete(source):
        raise PipelineError(f"no stack for this config ({source}): run `make stack COMP={ctx.comp}`")
    comp = ctx.cfg.competition
    ref = input_ref(source, ctx.root)
    path = artifact_path(ctx.root, "submit", ctx.comp, stable_hash({"stack": ref["key"], **sections(ctx.cfg, ["competition"])}))
    if is_complete(path):
        log.info(f"submission up to date: {path}")
    else:
        probs = read_predictions(source / "test.csv", ctx.test.ids, "test predictions", output_names(comp))
        sub = build_submission(comp, ctx.test.ids, probs)
        validate_submission(sub, ctx.test.frame, comp, source=str(path / "submission.csv"))
        with staging(path) as tmp:
            atomic_write_csv(tmp / "submission.csv", sub)
            write_manifest(tmp, "submit", path.name, sections(ctx.cfg, ["competition"]), fold_key=ref["fold_key"],
                           inputs={"stack": ref}, metrics={"rows": len(sub)})
        log.info(f"wrote validated submission ({len(sub)} rows) -> {path / 'submission.csv'}")
    atomic_copy(path / "submission.csv", ctx.root / "submission.csv")
    log.info(f"copied to {ctx.root / 'submission.csv'}")
    return path
