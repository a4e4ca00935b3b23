"""make audit: read every artifact of a competition on disk and prove, or refute naming the row id and the
artifact, that no validation row leaked:

- folds:      each folds.csv puts every train id in exactly one fold; the fold sizes match its manifest
- models:     each fold folder validated on the fold its name says, on a split that exists, with that many rows
- oof:        every train id predicted exactly once, by the model whose validation fold held it (the fold column
              equals folds.csv; fold k's model folder has fold == k and the same fold key)
- stacks:     every input shares the stack's fold key, and the stack's folds equal its inputs' and folds.csv
- pseudo:     pseudo-label rows are test ids only, so never in a validation fold; models trained on a set use its folds
- distill:    a student's soft targets (its teacher's OOF) were predicted on the student's folds
- duplicates: byte-identical images across train/test and across folds (a FAIL under folds.dedupe)
- classes:    per-fold class (tag) counts; a class the metric needs missing from a validation fold is a FAIL

Prints a line per check and artifact and writes the same as audit/<comp>/audit.json. Exit 1 when a check fails."""
import logging

from ..artifacts import stage_root
from ..audit.auditor import MALFORMED, Auditor
from ..audit.duplicate_checks import check_duplicates
from ..audit.levels import check_pseudo, check_stack
from ..audit.predictions import check_distill, check_models, check_oof
from ..audit.report import Report
from ..audit.splits import check_classes, check_folds, check_groups
from ..errors import PipelineError
from ..utils.io import atomic_write_json

log = logging.getLogger("foldstack")


def audit(ctx) -> Report:
    """Every check over every complete artifact of the competition (the checks live in audit/)."""
    a = Auditor(ctx)
    folds = a.complete("folds", 1)
    models = a.complete("train", 3)
    oofs = a.complete("predict", 2)
    stacks = a.complete("stack", 1)
    pseudo = [p for p in a.complete("pseudo", 2) if p.parent.name.startswith("round")]
    exps = sorted({p.parent.parent.name for p in models} | {p.parent.name for p in oofs})
    r = a.report
    if not any((folds, models, oofs, stacks, pseudo)):
        r.notes.append(f"nothing built yet for {a.comp}: no folds/, models/, oof/, stacks/ or pseudo/ artifacts "
                       f"under {a.root} (run `make folds COMP={a.comp}` first); input checks only")
    else:
        r.notes.append(f"audit of {a.comp}: {len(folds)} fold split(s), {len(models)} model fold(s) of "
                       f"{len(exps)} experiment(s) ({', '.join(exps) or '-'}), {len(oofs)} OOF prediction set(s), "
                       f"{len(stacks)} stack(s), {len(pseudo)} pseudo-label set(s)")
    for p in folds:
        a.guarded("folds", p, check_folds)
    if models:
        try:
            check_models(a, models)
        except MALFORMED as e:
            a.add("models", "FAIL", a.rel(models[0].parent.parent), f"unreadable: {e}")
    for p in oofs:
        a.guarded("oof", p, check_oof)
    for p in stacks:
        a.guarded("stacks", p, check_stack)
    try:
        check_distill(a, models)
    except MALFORMED as e:
        a.add("distill", "FAIL", "", f"unreadable model manifest: {e}")
    check_duplicates(a)
    for p in pseudo:
        a.guarded("pseudo", p, check_pseudo, models)
    for split in a.splits.values():
        check_classes(a, split)
        check_groups(a, split)
    return r


def run(ctx):
    report = audit(ctx)
    print("\n".join(report.lines()), flush=True)
    out = stage_root(ctx.root, "audit", ctx.comp, "audit.json")
    atomic_write_json(out, report.to_json())
    log.info(f"audit report -> {out}")
    failures = report.failures()
    if failures:
        checks = sorted({f.check for f in failures})
        raise PipelineError(f"audit of {ctx.comp}: {len(failures)} check(s) failed ({', '.join(checks)}): "
                            f"first: {failures[0].artifact or 'input'}: {failures[0].message}")
    return out
