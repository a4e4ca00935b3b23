"""The (trial, fold) tasks on Ray: each a stage call as `make` runs it (worker.StageCalls). The stages write every
artifact into the project folder, which must be on a file system every machine of the cluster shares; tasks pass
names, never arrays. Imported once `cluster.connect` has set Ray's settings."""
import logging
import platform
import time
from collections import deque
from pathlib import Path

import ray

from ..errors import PipelineError, one_line
from .cluster import Slot
from .worker import StageCalls, setup_worker, trial_context

log = logging.getLogger("foldstack")


@ray.remote(max_retries=0)
def run_stages(calls: StageCalls, root: str, comp: str, exp: str, fold: int | None, stages: list, threads: int,
               gpu: bool) -> dict:
    """One task: `stages` of experiment exp (fold k of train, or all folds' oof), as make runs them."""
    setup_worker(threads)
    t0 = time.time()
    calls.run(trial_context(calls, root, comp, exp, fold, threads, gpu), stages)
    return dict(seconds=round(time.time() - t0, 2), host=platform.node())


def capacity(slot_: Slot) -> int:
    """How many tasks the cluster runs at once (asked each time: nodes may join)."""
    res = ray.cluster_resources()
    n = int(res.get("CPU", 0) // slot_.cpus)
    if slot_.gpus:
        n = min(n, int(res.get("GPU", 0) // slot_.gpus))
    return max(n, 1)


def train_and_predict(calls: StageCalls, slot_: Slot, root: Path, comp: str, plan: dict, record,
                      predict: bool = True) -> dict:
    """plan: {trial: folds to train}. Each fold a task, then (predict) the trial's OOF predictions once its folds are
    trained, before any other fold; Ray is handed no more than it runs at once, trials in order, so a killed sweep
    leaves whole trials. A trial that fails is recorded and the others go on. Returns {trial: error line}."""
    remote = run_stages.options(**slot_.task_options())
    queue = deque((name, k) for name, folds in plan.items() for k in folds)
    queue.extend((name, None) for name, folds in plan.items() if not folds and predict)
    waiting, errors, left = {}, {}, {name: set(folds) for name, folds in plan.items()}
    while queue or waiting:
        while queue and len(waiting) < capacity(slot_):
            name, fold = queue.popleft()
            stages = ["train"] if fold is not None else ["oof"]  # fold None: the trial's OOF predictions
            task = remote.remote(calls, str(root), comp, name, fold, stages, slot_.threads, slot_.gpus > 0)
            waiting[task] = (name, fold)
        [ref], _ = ray.wait(list(waiting), num_returns=1)
        name, fold = waiting.pop(ref)
        what = f"fold {fold}" if fold is not None else "OOF predictions"
        try:
            result = ray.get(ref)
        except (ray.exceptions.RayError, PipelineError) as e:
            errors[name] = f"{what}: {one_line(getattr(e, 'cause', None) or e)}"  # the stage's own error line
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
