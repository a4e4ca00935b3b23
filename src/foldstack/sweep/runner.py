"""Ray: the one module that imports Ray and Optuna (the `sweep` extra).

The driver connects to a cluster (`connect`: SWEEP_ADDRESS or RAY_ADDRESS, else a local Ray on this machine's
CPUs and GPUs) and sends it (trial, fold) tasks, each a stage call as `make` runs it (`pipeline.run` on the
trial's experiment, FOLD=k): `train_and_predict` trains the folds a trial lacks, then its OOF predictions once
they are all trained. A search first runs fold 0 of every trial under Ray Tune (`search`): Optuna's TPE sampler
picks the points, and ASHA stops a trial whose fold-0 validation metric at a rung (an epoch count) falls
behind the others', recording why. Every artifact is written by the stages into the project folder, so the
folder must be on a file system every machine of the cluster shares; tasks pass names, never arrays."""
import logging
import os
import platform
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

# Every task's log lines reach the terminal (Ray would fold repeated ones into one), without colour codes; Tune's
# own tables are left out (verbose=0 under its older output): the driver logs each trial's epochs itself.
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_COLOR_PREFIX", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def cluster_address() -> str | None:
    return os.environ.get("SWEEP_ADDRESS") or os.environ.get("RAY_ADDRESS") or None


# A cluster started with `ray start` uses token authentication (Ray 2.60), but a driver that joins it sends its token
# only under RAY_AUTH_MODE=token: set it when a token is at hand and nobody chose a mode.
if cluster_address() and "RAY_AUTH_MODE" not in os.environ and (
        os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
        or (Path.home() / ".ray" / "auth_token").is_file()):
    os.environ["RAY_AUTH_MODE"] = "token"

import optuna  # noqa: E402
import ray  # noqa: E402  (reads those at import)
from ray import tune  # noqa: E402
from ray.tune.schedulers import ASHAScheduler  # noqa: E402
from ray.tune.search.optuna import OptunaSearch  # noqa: E402

from ..cli import one_line  # noqa: E402
from ..errors import PipelineError  # noqa: E402
from .spec import Dimension, Resources, SweepSpec  # noqa: E402
from .trials import describe, make_trial, write_trial  # noqa: E402

log = logging.getLogger("foldstack")

OBJECT_STORE_BYTES = 100 * 2**20  # tasks exchange names and paths, never arrays: Ray's smallest store will do
PASSED_ENV = ("HF_HUB_OFFLINE", "HF_HOME", "TORCH_HOME")  # a remote node's workers do not inherit the driver's


def connect(cpus: int | None = None) -> dict:
    """ray.init: the existing cluster at SWEEP_ADDRESS / RAY_ADDRESS, else a local one with this machine's GPUs and
    `cpus` CPUs (default all). Workers import foldstack from the source this driver runs (PYTHONPATH), so a
    checkout on the shared file system is the code every node runs. Returns the cluster's resources."""
    import foldstack

    source = str(Path(foldstack.__file__).resolve().parents[1])
    paths = [source] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != source]
    env = {"PYTHONPATH": os.pathsep.join(paths), **{k: os.environ[k] for k in PASSED_ENV if k in os.environ}}
    options = dict(runtime_env={"env_vars": env}, logging_level=logging.WARNING, log_to_driver=True)
    address = cluster_address()
    if address:
        if cpus:
            log.warning(f"sweep: --cpus {cpus} ignored: the cluster at {address} has the resources it has")
        ray.init(address=address, **options)
    else:
        # "local": a new instance, even where `ray start` left /tmp/ray/ray_current_cluster behind
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES,
                 **options)
    resources = ray.cluster_resources()
    log.info(f"sweep: Ray {'cluster at ' + address if address else 'on this machine'}: "
             f"{resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs, "
             f"{len([n for n in ray.nodes() if n.get('Alive')])} node(s)")
    return resources


@dataclass(frozen=True)
class Slot:
    """What one task asks Ray for."""
    cpus: float
    gpus: float
    memory_gb: float | None

    @property
    def threads(self) -> int:
        return max(1, int(self.cpus))

    def _memory(self) -> dict:
        return {"memory": int(self.memory_gb * 2**30)} if self.memory_gb else {}

    def task_options(self) -> dict:
        """A remote function's options (`.options(...)`)."""
        return dict(num_cpus=self.cpus, num_gpus=self.gpus, **self._memory())

    def trial_resources(self) -> dict:
        """The same request as Tune writes it (`tune.with_resources`)."""
        return dict(cpu=self.cpus, gpu=self.gpus, **self._memory())


def slot(resources: Resources, cluster: dict) -> Slot:
    """A task's request, checked against the cluster (a request no node can meet would wait forever)."""
    gpus = (1.0 if cluster.get("GPU", 0) > 0 else 0.0) if resources.gpus == "auto" else float(resources.gpus)
    if resources.cpus > cluster.get("CPU", 0):
        raise PipelineError(f"resources.cpus={resources.cpus:g} per task, but the cluster has "
                            f"{cluster.get('CPU', 0):g} CPUs")
    if gpus > cluster.get("GPU", 0):
        raise PipelineError(f"resources.gpus={gpus:g} per task, but the cluster has {cluster.get('GPU', 0):g} GPUs")
    return Slot(resources.cpus, gpus, resources.memory_gb)


# --- the workers' side ---------------------------------------------------------------------------------------------

def _worker(threads: int) -> None:
    """Logging as the scripts have it (Ray forwards it to the driver's terminal) and torch's threads = the task's
    CPUs: the same thread count gives the same float results as a `make` run with OMP_NUM_THREADS set to it."""
    import torch

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(threads)


def trial_context(root: str, comp: str, exp: str, fold: int | None, threads: int, gpu: bool):
    """The Context `make train EXP=exp FOLD=fold` builds, with what never changes a result set for a task: no
    progress bars in the forwarded logs and, on a GPU, loader workers from the task's CPUs, not the machine's."""
    from .. import pipeline

    ctx = pipeline.context(comp, exp, root=root, fold=fold, download=True)
    runtime = {"progress": False}
    if gpu and ctx.cfg.runtime.num_workers == "auto":
        runtime["num_workers"] = max(threads - 1, 0)
    return ctx.derive(runtime=runtime)


@ray.remote(max_retries=0)
def run_stages(root: str, comp: str, exp: str, fold: int | None, stages: list, threads: int, gpu: bool) -> dict:
    """One task: `stages` of experiment exp (fold k of train, or all folds' oof), as make runs them."""
    from .. import pipeline

    _worker(threads)
    t0 = time.time()
    seconds = pipeline.run(trial_context(root, comp, exp, fold, threads, gpu), stages)
    return dict(exp=exp, fold=fold, stages=seconds, seconds=round(time.time() - t0, 2), host=platform.node(),
                pid=os.getpid())


def task_error(e: Exception) -> str:
    """One line for a task that failed: the stage's own PipelineError line, else the exception's last line."""
    cause = getattr(e, "cause", None)
    return one_line(cause if cause is not None else e)


def capacity(slot_: Slot) -> int:
    """How many tasks the cluster runs at once (asked each time: nodes may join)."""
    res = ray.cluster_resources()
    n = int(res.get("CPU", 0) // slot_.cpus)
    if slot_.gpus:
        n = min(n, int(res.get("GPU", 0) // slot_.gpus))
    return max(n, 1)


def train_and_predict(root: Path, comp: str, plan: dict, record, slot_: Slot, predict: bool = True) -> dict:
    """plan: {trial: folds to train}. Every fold as a task, then (predict) each trial's OOF predictions as a task
    once its folds are trained. No more tasks are handed to Ray than it can run at once, trials in order and a
    trial's predictions before any other fold, so trials finish one after another (a killed sweep leaves whole
    trials). A trial that fails is recorded and the others go on. Returns {trial: error line}."""
    remote = run_stages.options(**slot_.task_options())
    queue = deque((name, k) for name, folds in plan.items() for k in folds)
    queue.extend((name, None) for name, folds in plan.items() if not folds and predict)
    waiting, errors, left = {}, {}, {name: set(folds) for name, folds in plan.items()}
    while queue or waiting:
        while queue and len(waiting) < capacity(slot_):
            name, fold = queue.popleft()
            stages = ["train"] if fold is not None else ["oof"]
            waiting[remote.remote(str(root), comp, name, fold, stages, slot_.threads, slot_.gpus > 0)] = (name, fold)
        [ref], _ = ray.wait(list(waiting), num_returns=1)
        name, fold = waiting.pop(ref)
        what = f"fold {fold}" if fold is not None else "OOF predictions"
        try:
            result = ray.get(ref)
        except (ray.exceptions.RayError, PipelineError) as e:
            errors[name] = f"{what}: {task_error(e)}"
            log.error(f"sweep: {name}: {errors[name]}")
            record.update(name, state="error", error=errors[name])
            queue = deque(item for item in queue if item[0] != name)  # its other folds would be for nothing
            continue
        record.task(name, fold, result["seconds"], result["host"])
        if fold is None:
            record.update(name, state="complete")
            log.info(f"sweep: {name}: OOF predictions done ({result['seconds']:.0f}s)")
            continue
        log.info(f"sweep: {name}: fold {fold} trained ({result['seconds']:.0f}s on {result['host']})")
        left[name].discard(fold)
        if not left[name] and name not in errors and predict:
            queue.appendleft((name, None))
    return errors


# --- the search: fold 0 of every trial under Ray Tune ------------------------------------------------------------

def tune_space(space: dict[str, Dimension]) -> dict:
    kinds = dict(choice=lambda v: tune.choice(v), uniform=lambda v: tune.uniform(*v),
                 loguniform=lambda v: tune.loguniform(*v), randint=lambda v: tune.randint(v[0], v[1] + 1))
    return {key: kinds[d.kind](getattr(d, d.kind)) for key, d in space.items()}


def fold0_trial(config: dict, root: str, comp: str, sweep: str, spec: SweepSpec, start: dict, metric: str,
                threads: int, gpu: bool) -> None:
    """One search trial (a Tune function trainable): its experiment file, then fold 0 trained by the train stage
    with every epoch's validation metric reported to Tune but the last, which is reported once the fold is
    complete. When ASHA stops the trial, tune.report raises SystemExit out of the training (Tune's way: caught,
    Tune could not reuse the process): the fold is left unfinished and resumable, never completed short."""
    from .. import pipeline
    from ..artifacts import read_manifest

    _worker(threads)
    trial = make_trial(sweep, start, config)
    write_trial(root, sweep, spec, trial)
    ctx = trial_context(root, comp, trial.name, 0, threads, gpu)
    epochs = ctx.cfg.train.epochs

    def report(fold: int, epoch: int, row: dict) -> None:
        if epoch < epochs:
            tune.report({metric: row[metric], "epoch": epoch})

    models = pipeline.stage_function("train")(ctx, on_epoch=report)
    metrics = read_manifest(models / "fold0")["metrics"]
    tune.report({metric: metrics["last"], "epoch": metrics["epochs"], "fold0_complete": True})


class RecordingASHA(ASHAScheduler):
    """ASHA that says why it stopped a trial: the epoch (the rung), the trial's metric and the rung's cutoff
    (the 1 - 1/reduction_factor quantile of the metrics that trials reported at that rung before it).
    on_stop(trial config, why) in the driver, as the decision is made."""

    def __init__(self, on_stop, **kwargs):
        super().__init__(**kwargs)
        self.on_stop = on_stop

    def _rung_cutoff(self, trial, result: dict):
        """(rung epoch, cutoff) this result is judged at, before it is recorded (Ray 2.60's bracket layout)."""
        bracket = self._trial_info.get(trial.trial_id)
        if bracket is None:
            return None, None
        t = result[self._time_attr]
        for milestone, recorded in bracket._rungs:  # highest rung first
            if t >= milestone and trial.trial_id in recorded:
                break
            if t >= milestone:
                cutoff = bracket.cutoff(recorded)
                return milestone, None if cutoff is None else float(cutoff * self._metric_op)
        return None, None

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        rung, cutoff = (None, None)
        if self._time_attr in result and self._metric in result:
            rung, cutoff = self._rung_cutoff(trial, result)
        action = super().on_trial_result(tune_controller, trial, result)
        if action == self.STOP and not result.get("fold0_complete"):
            value, epoch = float(result[self._metric]), int(result[self._time_attr])
            side = "below" if self._metric_op > 0 else "above"
            why = (f"stopped by ASHA at epoch {epoch}: {self._metric} {value:.5g} {side} the epoch-{rung:g} rung's "
                   f"cutoff {cutoff:.5g}" if cutoff is not None else
                   f"stopped by ASHA at epoch {epoch} with {self._metric} {value:.5g}")
            self.on_stop(trial.config, dict(epoch=epoch, metric=value, rung=rung, cutoff=cutoff, why=why))
        return action


class ResumedOptunaSearch(OptunaSearch):
    """OptunaSearch that also re-runs `pending` points first (trials a killed sweep had started), after the
    evaluated ones (points_to_evaluate with evaluated_rewards) are added to the study."""

    def __init__(self, pending: list, **kwargs):
        super().__init__(**kwargs)
        self._pending = pending

    def _setup_study(self, mode):
        super()._setup_study(mode)
        for point in self._pending:
            self._ot_study.enqueue_trial(point)


class Recorder(tune.Callback):
    """The search's events into the sweep's record (each trial entered with its values as it starts) and log, in
    the driver."""

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


def search(root: Path, comp: str, sweep: str, spec: SweepSpec, start: dict, record, slot_: Slot, metric: str,
           mode: str, max_epochs: int, evaluated: list, pending: list, new: int) -> None:
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
    searcher = ResumedOptunaSearch(pending, seed=seed, points_to_evaluate=[v for v, _ in evaluated] or None,
                                   evaluated_rewards=[r for _, r in evaluated] or None)
    scheduler = (RecordingASHA(stopped, time_attr="epoch", max_t=max_epochs, grace_period=min(s.asha.grace_period,
                               max_epochs), reduction_factor=s.asha.reduction_factor, stop_last_trials=False)
                 if s.asha is not None else None)
    trainable = tune.with_parameters(fold0_trial, root=str(root), comp=comp, sweep=sweep, spec=spec, start=start,
                                     metric=metric, threads=slot_.threads, gpu=slot_.gpus > 0)
    log.info(f"sweep: search: {len(pending)} unfinished + {new} new trial(s) of {s.trials}, "
             f"{len(evaluated)} already evaluated; space {space}")
    tuner = tune.Tuner(
        tune.with_resources(trainable, slot_.trial_resources()),
        param_space=tune_space(s.space),
        tune_config=tune.TuneConfig(metric=metric, mode=mode, search_alg=searcher, scheduler=scheduler,
                                    num_samples=len(pending) + new, reuse_actors=True,
                                    trial_dirname_creator=lambda trial: trial.trial_id),
        run_config=tune.RunConfig(storage_path=str(Path(record.path).parent / "ray"),
                                  name=time.strftime("search-%Y%m%d-%H%M%S"), verbose=0,
                                  callbacks=[Recorder(trial_of, record, metric)]))
    tuner.fit()
