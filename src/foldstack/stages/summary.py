"""`make summary`: what the experiment's model costs, without training it or reading an image.

For the model as configured (random weights, so no weights file is needed) it reports the parameters (total;
trainable; trainable while the backbone is frozen), the FLOPs of one image's forward pass at data.img_size (MACs =
FLOPs / 2), the feature width the head sees, and images/s on runtime.device with the pipeline's memory layout and
mixed precision: inference (eval, batches of 2 x data.batch_size) and train (forward + backward on random targets,
no optimizer step or loader: an upper bound; `make bench` measures the real step). Prints a table and writes
summary/<comp>/<exp>.json per experiment (--all-experiments: baseline and every configs/exp/*.yaml). The counting
and timing: engine/profile.py."""
import logging

from ..artifacts import stage_root
from ..config.files import experiment_names
from ..errors import PipelineError
from ..utils.io import atomic_write_json
from ..utils.tables import format_table

log = logging.getLogger("foldstack")


def add_arguments(p) -> None:
    p.add_argument("--all-experiments", action="store_true",
                   help="summarise every configs/exp/*.yaml (the --set overrides apply to each)")
    p.add_argument("--seconds", type=float, default=2.0,
                   help="time each speed measurement for about this long (at least 3 batches; default 2)")
    p.add_argument("--no-speed", action="store_true", help="parameters and FLOPs only: no timed batches")


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


COLUMNS = [("experiment", lambda r: r["experiment"]), ("model", lambda r: r["model"]),
           ("img", lambda r: str(r["img_size"])), ("params", lambda r: f"{r['params_total']:,}"),
           ("trainable", lambda r: f"{r['params_trainable']:,}"
            + ("" if r["params_trainable_frozen"] is None else f" ({r['params_trainable_frozen']:,} frozen)")),
           ("GFLOPs", lambda r: f"{r['gflops']:.4g}"), ("GMACs", lambda r: f"{r['gmacs']:.4g}"),
           ("features", lambda r: str(r["feature_width"])),
           ("infer img/s", lambda r: _fmt(r["infer_images_per_s"], ".1f") + f" (bs {r['infer_batch']})"),
           ("train img/s", lambda r: _fmt(r["train_images_per_s"], ".1f") + f" (bs {r['train_batch']})")]


def table(rows: list[dict]) -> str:
    first = rows[0]
    return (format_table([name for name, _ in COLUMNS], [[get(r) for _, get in COLUMNS] for r in rows], left=2)
            + f"\ndevice {first['device']}, torch {first['torch']}, {first['threads']} threads; FLOPs: one image, "
              f"eval; train img/s: forward + backward on random targets (no optimizer step, no loader)")


def run(ctx) -> list[dict]:
    from ..engine.profile import summarize

    args = ctx.args
    names = [ctx.exp]
    if getattr(args, "all_experiments", False):  # baseline (which needs no file) first
        names = ["baseline"] + [n for n in experiment_names(ctx.root) if n != "baseline"]
    seconds, speed = getattr(args, "seconds", 2.0), not getattr(args, "no_speed", False)
    if seconds < 0:
        raise PipelineError(f"--seconds must be >= 0, got {seconds}")
    n_outputs = ctx.targets.shape[1]
    rows = []
    for name in names:
        sub = ctx if name == ctx.exp else ctx.derive(exp=name)
        log.info(f"summary: {ctx.comp} / {name} ({sub.cfg.model.name} at {sub.cfg.data.img_size} px)")
        row = dict(comp=ctx.comp, experiment=name, **summarize(sub.cfg, n_outputs, seconds, speed))
        atomic_write_json(stage_root(ctx.root, "summary", ctx.comp, f"{name}.json"), row)
        rows.append(row)
    print(table(rows), flush=True)
    log.info(f"summary -> {ctx.root / 'summary' / ctx.comp}/")
    return rows
