"""`make sweep COMP=<name> SWEEP=<name>`: the trials of configs/sweep/<name>.yaml, each an ordinary experiment, run
on Ray, then the leaderboard (make stack's table, a row per trial), the best N and the `make stack` that blends them.
A grid trains the (trial, fold) tasks of every combination, then the OOF predictions (objective `fold0`: fold 0
first, then the best N's other folds); a search runs fold 0 under Ray Tune (Optuna, ASHA), then finishes every
trial not stopped (`oof`) or the best N by fold 0 (`fold0`). Folds and predictions are artifacts found by their
keys: a rerun trains only what is missing (an interrupted fold resumes from its last epoch). What each run did, and
why ASHA stopped a trial, is in sweeps/<comp>/<sweep>/results.json."""
import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from .. import pipeline
from ..artifacts import is_complete, read_manifest
from ..config.loading import read_yaml, resolve
from ..config.files import competition_file
from ..errors import PipelineError
from ..lineage import load_folds, predict_dir, train_dir
from ..metrics import HIGHER_IS_BETTER
from ..stacking.report import format_report
from ..sweep import cluster, leaderboard as board
from ..sweep.results import SweepRecord
from ..sweep.spec import SweepSpec, load_spec
from ..sweep.trials import Trial, base_layer, describe, format_value, grid_trials, make_trial, write_trial
from ..sweep.worker import StageCalls
from ..utils.io import atomic_write_csv

log = logging.getLogger("foldstack")


def add_arguments(p) -> None:
    p.add_argument("--sweep", required=True, metavar="NAME", help="the sweep: configs/sweep/<NAME>.yaml")
    p.add_argument("--cpus", type=int, default=None,
                   help="CPUs of the local Ray (default: all of this machine's); not with SWEEP_ADDRESS/RAY_ADDRESS")


def connect_ray(cpus: int | None, spec: SweepSpec):
    """Ray connected, then (train_and_predict, search_fold0) of the modules that import Ray and Optuna, handed the
    pipeline's calls (sweep/ does not import the stages) and the slot a task asks for."""
    try:
        resources = cluster.connect(cpus)
        from ..sweep import runner, search
    except ImportError as e:
        raise cluster.missing_extra(e.name) from None
    slot = cluster.slot(spec.resources, resources)
    calls = StageCalls(context=pipeline.context, run=pipeline.run, train=pipeline.stage_function("train"))
    return partial(runner.train_and_predict, calls, slot), partial(search.search, calls, slot)


@dataclass(frozen=True)
class Progress:
    """What is on disk for one trial."""
    todo: list                  # folds not trained
    fold0: dict | None          # fold 0's manifest metrics, once trained
    predictions: Path | None    # its OOF predictions folder, once built


def progress(ctx) -> Progress:
    path = train_dir(ctx, load_folds(ctx).key).path
    todo = [k for k in range(ctx.cfg.folds.n_splits) if not is_complete(path / f"fold{k}")]
    fold0 = read_manifest(path / "fold0")["metrics"] if 0 not in todo else None
    predictions = predict_dir(ctx).path if not todo else None
    return Progress(todo, fold0, predictions if predictions is not None and is_complete(predictions) else None)


def trial_contexts(ctx, sweep: str, spec: SweepSpec, trials: list[Trial]) -> dict:
    """{trial: its Context}: every trial's whole config checked (the competition's file, then the trial's layer)
    before any file is written, then each written to configs/exp/<trial>.yaml."""
    comp = competition_file(ctx.root, ctx.comp)
    for t in trials:
        resolve([(str(comp), read_yaml(comp)), (f"configs/sweep/{sweep}.yaml: {describe(t.values)}", t.layer)])
    for t in trials:
        write_trial(ctx.root, sweep, spec, t)
    return {t.name: ctx.derive(exp=t.name) for t in trials}


def plan_folds(contexts: dict, names: list[str], record, folds=None) -> dict:
    """{trial: folds it still has to train (of `folds`, default all)} for the trials not yet predicted; what was
    already done is said and recorded. The images are decoded now, once, not raced for by the tasks."""
    plan = {}
    for name in names:
        p = progress(contexts[name])
        if p.predictions is not None:
            log.info(f"sweep: {name}: up to date ({p.predictions.relative_to(contexts[name].root)})")
            record.already_done(name, "OOF predictions")
            record.update(name, state="complete")
            continue
        trained = [k for k in range(contexts[name].cfg.folds.n_splits) if k not in p.todo]
        if trained:
            log.info(f"sweep: {name}: fold(s) {trained} already trained" + (f", to train: {p.todo}" if p.todo else ""))
            record.already_done(name, f"folds {trained}")
        plan[name] = [k for k in p.todo if folds is None or k in folds]
        if plan[name]:
            contexts[name].images  # noqa: B018
    return plan


def search_trials(sweep: str, spec: SweepSpec, start: dict, record) -> list[Trial]:
    """The trials of this spec that the record holds (a changed spec's old trials have other names)."""
    space = spec.search.space
    trials = [(name, make_trial(sweep, start, entry["values"])) for name, entry in record.trials.items()]
    return [t for name, t in trials if t.name == name and set(t.values) == set(space)
            and all(space[k].contains(v) for k, v in t.values.items())]


def run_search(ctx, base, sweep: str, spec: SweepSpec, start: dict, record, search_fold0) -> dict:
    """Fold 0 of every trial of the search; a resumed search tells the sampler the trials done (fold 0 trained, or
    stopped by ASHA), reruns those a kill interrupted, and draws only the rest. Returns {trial: Context}."""
    evaluated, pending, done = [], [], []
    known = search_trials(sweep, spec, start, record)
    for trial, (name, c) in zip(known, trial_contexts(ctx, sweep, spec, known).items()):
        p, entry = progress(c), record.trials[name]
        if p.fold0 is None and entry.get("state") != "stopped":
            pending.append(trial.values)
            continue
        stopped = entry["stopped"] if p.fold0 is None else None
        evaluated.append((trial.values, stopped["metric"] if stopped else p.fold0["last"]))
        record.already_done(name, stopped["why"] if stopped else "fold 0")
        done.append(name)
    pending = pending[:max(spec.search.trials - len(evaluated), 0)]
    new = spec.search.trials - len(evaluated) - len(pending)
    if evaluated:
        log.info(f"sweep: {len(done)} trial(s) of the search already done: {', '.join(done)}")
    if pending or new:
        metric = base.cfg.competition.metric
        epochs = spec.search.space.get("train.epochs")
        max_epochs = max(epochs.examples) if epochs is not None else base.cfg.train.epochs
        base.images  # noqa: B018  (decoded once here; trials at other sizes decode theirs)
        search_fold0(ctx.root, ctx.comp, sweep, spec, start, record, metric,
                     "max" if HIGHER_IS_BETTER[metric] else "min", max_epochs, evaluated, pending, new)
    return trial_contexts(ctx, sweep, spec, search_trials(sweep, spec, start, record))


def fold0_table(contexts: dict, record, metric: str) -> pd.DataFrame:
    """Each trial's values and fold 0 (epochs run, metric, state: why ASHA stopped it or how far it got), best first."""
    rows = []
    for name, c in contexts.items():
        entry, p = record.trials[name], progress(c)
        stopped = entry.get("stopped") if entry.get("state") == "stopped" else None
        state = (stopped["why"] if stopped else f"error: {entry['error']}" if entry.get("state") == "error"
                 else "OOF predicted" if p.predictions is not None else "fold 0 trained" if p.fold0 is not None
                 else "not run")
        epochs = p.fold0["epochs"] if p.fold0 else stopped["epoch"] if stopped else None
        score = p.fold0["last"] if p.fold0 else stopped["metric"] if stopped else float("nan")
        rows.append(dict(trial=name, **{k: format_value(v) for k, v in entry["values"].items()},
                         epochs="" if epochs is None else int(epochs), **{f"fold0 {metric}": score}, state=state))
    return pd.DataFrame(rows).sort_values(f"fold0 {metric}", ascending=not HIGHER_IS_BETTER[metric], kind="stable",
                                          na_position="last")


def run(ctx):
    if getattr(ctx.args, "set", None):
        raise PipelineError("OVERRIDES / --set: a sweep's settings go in its spec, configs/sweep/<name>.yaml "
                            "(`overrides:` for those every trial shares)")
    sweep = ctx.args.sweep
    spec_file, spec = load_spec(ctx.root, sweep)
    start = base_layer(ctx.root, spec)
    cluster.check_installed()
    base = pipeline.context(ctx.comp, spec.base, overrides=spec.overrides, root=ctx.root)
    metric = base.cfg.competition.metric
    record = SweepRecord(ctx.root, ctx.comp, sweep, str(spec_file.relative_to(ctx.root)), spec)
    if spec.grid is not None:
        trials = grid_trials(sweep, spec, start)
        contexts = trial_contexts(ctx, sweep, spec, trials)
        for t in trials:
            record.add(t)
        log.info(f"sweep: {sweep}: a grid of {len(trials)} trial(s) over {', '.join(spec.grid)}; objective "
                 f"{spec.objective} ({metric})")
    pipeline.run(base, ["folds"])  # the one split every trial trains on (a trial cannot change folds.*)
    train_and_predict, search_fold0 = connect_ray(ctx.args.cpus, spec)
    errors = {}
    if spec.grid is None:
        contexts = run_search(ctx, base, sweep, spec, start, record, search_fold0)
    elif spec.objective == "fold0":
        plan = plan_folds(contexts, list(contexts), record, folds=[0])
        errors.update(train_and_predict(ctx.root, ctx.comp, plan, record, predict=False))
    if spec.grid is not None and spec.objective == "oof":
        finishing = list(contexts)
    else:  # the best N by fold 0, or (a search for OOF) every trial whose fold 0 ran to the end (not stopped by ASHA)
        scores = {name: p.fold0["last"] for name, p in ((name, progress(c)) for name, c in contexts.items())
                  if p.fold0 is not None and record.trials[name].get("state") != "stopped"}
        finishing = board.ranked(scores, metric)[:spec.best if spec.objective == "fold0" else len(contexts)]
    log.info(f"sweep: {len(finishing)} trial(s) to predict out of fold: {', '.join(finishing) or 'none'}")
    errors.update(train_and_predict(ctx.root, ctx.comp, plan_folds(contexts, finishing, record), record))
    summarize(ctx, base, sweep, spec, contexts, record, errors)


def summarize(ctx, base, sweep: str, spec: SweepSpec, contexts: dict, record, errors: dict) -> None:
    """The leaderboard (and a search's fold-0 table), the best N, the `make stack` command; results.json."""
    metric, folder = base.cfg.competition.metric, record.path.parent
    fold0 = None
    if spec.grid is None or spec.objective == "fold0":
        fold0 = fold0_table(contexts, record, metric)
        print(f"\nfold 0 of every trial ({metric}):\n{fold0.to_string(index=False)}", flush=True)
    predicted = {name: p.predictions for name, p in ((n, progress(c)) for n, c in contexts.items())
                 if p.predictions is not None}
    report = board.oof_table(base, predicted, {n: record.trials[n]["values"] for n in predicted}) if predicted else None
    for name, table in (("leaderboard.csv", report), ("fold0.csv", fold0)):
        if table is not None:
            atomic_write_csv(folder / name, table)
    best, command = [], None
    if report is not None:
        print(f"\nleaderboard of {len(predicted)} trial(s) of {sweep} (make stack's table: OOF CV, best first):\n"
              f"{format_report(report, metric)}", flush=True)
        best = list(report["level"][:spec.best])
        # EXP=<the best>, so that make's chain (oof, train) has nothing to do
        command = f'make stack COMP={ctx.comp} EXP={best[0]} OVERRIDES="stack.experiments=[{",".join(best)}]"'
        print(f"\nbest {len(best)}: " + ", ".join(f"{n} ({cv:.5f})" for n, cv in zip(best, report["cv"]))
              + f"\nblend them:\n    {command}", flush=True)
    record.finish(best=best, stack_command=command, leaderboard=str(folder / "leaderboard.csv"))
    if errors:
        first = next(iter(errors.items()))
        raise PipelineError(f"{len(errors)} trial(s) of {sweep} failed (in {record.path}): {first[0]}: {first[1]}")
    if report is None:
        raise PipelineError(f"no trial of {sweep} has OOF predictions")
