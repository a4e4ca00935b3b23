"""The search on Ray Tune: fold 0 of every trial, Optuna's TPE sampler picking the points and ASHA stopping (and
recording why) a trial whose fold-0 metric at a rung falls behind. A resumed search's study already holds the trials
done and queues those a kill interrupted. Imported once `cluster.connect` has set Ray's settings."""
import logging
import time
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from ..artifacts import read_manifest
from ..errors import PipelineError, one_line
from .cluster import Slot
from .rungs import Rungs
from .spec import Dimension, SweepSpec
from .trials import describe, make_trial, write_trial
from .worker import StageCalls, setup_worker, trial_context

log = logging.getLogger("foldstack")


def optuna_space(space: dict[str, Dimension]) -> dict:
    """The space as Optuna's distributions (both ends of a randint included, as in the spec)."""
    kinds = dict(choice=CategoricalDistribution, uniform=lambda v: FloatDistribution(*v),
                 loguniform=lambda v: FloatDistribution(*v, log=True), randint=lambda v: IntDistribution(*v))
    return {key: kinds[d.kind](d.examples) for key, d in space.items()}


def resumed_searcher(space: dict, metric: str, mode: str, seed: int, evaluated: list, pending: list) -> OptunaSearch:
    """OptunaSearch on a study (in memory) that already holds the `evaluated` [(values, fold-0 metric)] as complete
    trials and queues the `pending` points (trials a killed sweep had started) before any new draw."""
    storage, name = optuna.storages.InMemoryStorage(), "sweep"
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(storage=storage, sampler=sampler, study_name=name,
                                direction="maximize" if mode == "max" else "minimize")
    for values, value in evaluated:
        study.add_trial(optuna.trial.create_trial(params=values, distributions=space, value=value))
    for values in pending:
        study.enqueue_trial(values)
    return OptunaSearch(space, metric=metric, mode=mode, sampler=sampler, storage=storage, study_name=name)


def fold0_trial(config: dict, calls: StageCalls, root: str, comp: str, sweep: str, spec: SweepSpec, start: dict,
                metric: str, threads: int, gpu: bool) -> None:
    """A Tune trainable: the trial's experiment file, then fold 0, each epoch's metric reported but the last, which
    is reported once the fold is complete. ASHA's stop is tune.report raising SystemExit out of the training (never
    caught, or Tune could not reuse the process): the fold is left resumable, never completed short."""
    setup_worker(threads)
    trial = make_trial(sweep, start, config)
    write_trial(root, sweep, spec, trial)
    ctx = trial_context(calls, root, comp, trial.name, 0, threads, gpu)
    epochs = ctx.cfg.train.epochs

    def report(fold: int, epoch: int, row: dict) -> None:
        if epoch < epochs:
            tune.report({metric: row[metric], "epoch": epoch})

    models = calls.train(ctx, on_epoch=report)
    metrics = read_manifest(models / "fold0")["metrics"]
    tune.report({metric: metrics["last"], "epoch": metrics["epochs"], "fold0_complete": True})


class RecordingASHA(ASHAScheduler):
    """ASHA on the epochs that says why it stopped a trial (`Rungs`: the rung and its cutoff), through
    on_stop(trial config, why) in the driver, as the decision is made."""

    def __init__(self, on_stop, rungs: Rungs, max_t: int, grace_period: int, reduction_factor: float):
        super().__init__(time_attr="epoch", max_t=max_t, grace_period=grace_period,
                         reduction_factor=reduction_factor, stop_last_trials=False)
        self.on_stop, self.rungs = on_stop, rungs

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        rung, cutoff = self.rungs.enter(trial.trial_id, result)  # judged against the rung before ASHA enters it
        action = super().on_trial_result(tune_controller, trial, result)
        if action == self.STOP and not result.get("fold0_complete"):
            self.on_stop(trial.config, self.rungs.stop_reason(result, rung, cutoff))
        return action

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self.rungs.enter(trial.trial_id, result)  # ASHA enters a finished trial's last result too
        super().on_trial_complete(tune_controller, trial, result)


class Recorder(tune.Callback):
    """The search's events into the sweep's record (each trial entered as it starts) and log, in the driver."""

    def __init__(self, trial_of, record, metric: str):
        self.trial_of, self.record, self.metric = trial_of, record, metric

    def on_trial_start(self, iteration, trials, trial, **info):
        t = self.trial_of(trial.config)
        self.record.add(t)
        self.record.update(t.name, state="running")
        self.record.searched(t.name)
        log.info(f"sweep: {t.name}: fold 0 ({describe(t.values)})")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        log.info(f"sweep: {self.trial_of(trial.config).name}: fold 0 epoch {result['epoch']} {self.metric} "
                 f"{result[self.metric]:.5f}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        name = self.trial_of(trial.config).name
        if self.record.trials[name].get("state") == "running":  # not stopped by ASHA: fold 0 is trained
            self.record.update(name, state="fold 0 trained")

    def on_trial_error(self, iteration, trials, trial, **info):
        name = self.trial_of(trial.config).name
        error = trial.error_file and Path(trial.error_file).is_file() and Path(trial.error_file).read_text()
        line = one_line(PipelineError(error)) if error else "failed"
        self.record.update(name, state="error", error=f"fold 0: {line}")
        log.error(f"sweep: {name}: fold 0: {line}")


def search(calls: StageCalls, slot_: Slot, root: Path, comp: str, sweep: str, spec: SweepSpec, start: dict, record,
           metric: str, mode: str, max_epochs: int, evaluated: list, pending: list, new: int) -> None:
    """Fold 0 of `pending` (trials a killed run left, resumed) and of `new` points Optuna's sampler draws, the
    sampler first told the `evaluated` [(values, fold-0 metric)]. ASHA on the epochs, max_t = max_epochs."""
    s = spec.search
    space = {k: getattr(d, d.kind) for k, d in s.space.items()}
    trial_of = lambda config: make_trial(sweep, start, config)  # noqa: E731

    def stopped(config: dict, why: dict) -> None:
        name = trial_of(config).name
        record.update(name, state="stopped", stopped=why)
        log.info(f"sweep: {name}: {why['why']}")

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per study
    # A resumed search draws with the seed moved on by the trials it knows: the same seed would draw the points
    # of the first run again (TPE's first points are random draws).
    seed = s.seed + len(evaluated) + len(pending)
    searcher = resumed_searcher(optuna_space(s.space), metric, mode, seed, evaluated, pending)
    scheduler = None
    if s.asha is not None:
        grace = min(s.asha.grace_period, max_epochs)
        scheduler = RecordingASHA(stopped, Rungs(metric, mode, grace, max_epochs, s.asha.reduction_factor),
                                  max_t=max_epochs, grace_period=grace, reduction_factor=s.asha.reduction_factor)
    trainable = tune.with_parameters(fold0_trial, calls=calls, root=str(root), comp=comp, sweep=sweep, spec=spec,
                                     start=start, metric=metric, threads=slot_.threads, gpu=slot_.gpus > 0)
    log.info(f"sweep: search: {len(pending)} unfinished + {new} new trial(s) of {s.trials}, "
             f"{len(evaluated)} already evaluated; space {space}")
    tuner = tune.Tuner(
        tune.with_resources(trainable, slot_.trial_resources()),
        tune_config=tune.TuneConfig(metric=metric, mode=mode, search_alg=searcher, scheduler=scheduler,
                                    num_samples=len(pending) + new, reuse_actors=True,
                                    trial_dirname_creator=lambda trial: trial.trial_id),
        run_config=tune.RunConfig(storage_path=str(Path(record.path).parent / "ray"),
                                  name=time.strftime("search-%Y%m%d-%H%M%S"), verbose=0,
                                  callbacks=[Recorder(trial_of, record, metric)]))
    tuner.fit()
