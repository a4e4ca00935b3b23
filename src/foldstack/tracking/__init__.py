"""Experiment tracking (runtime.trackers): every fold's epochs, and the CV tables of `make oof`, `make stack` and
`make pseudo`, also logged to TensorBoard, MLflow and/or Weights & Biases (docs/tracking.md).

A tracked run is named by what it logs, runs/<comp>/<exp>/<artifact key>/<fold<k>|oof|stack|pseudo-round<n>>/: the
TensorBoard event files and W&B offline files live there, with tracking.json (each tracker's run id and the last
epoch logged to all of them), so a killed fold resumes into the same runs. Nothing here writes under an artifact
folder, and runtime is outside every artifact key: tracking never changes an artifact's bytes or key."""
import json
from contextlib import contextmanager
import logging

from .. import distributed as dist
from ..utils.io import atomic_write_json
from .backends import BACKENDS, RunInfo
from .guard import Guarded

log = logging.getLogger("foldstack")


def flat_config(cfg) -> dict:
    """{"section.key": value} of the resolved config (nested mappings joined with dots)."""
    out = {}

    def walk(prefix, value):
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = value

    walk("", cfg.model_dump(mode="json"))
    return out


class Run:
    """One tracked run on every configured tracker (none on a DDP rank other than 0, or with trackers [])."""

    def __init__(self, ctx, name: str, key: str, tags: dict | None = None):
        rt = ctx.cfg.runtime
        self.dir = ctx.root / "runs" / ctx.comp / ctx.exp / key / name
        self.state_path = self.dir / "tracking.json"
        self.trackers: list[Guarded] = []
        if not rt.trackers or not dist.is_main():
            return
        state = json.loads(self.state_path.read_text()) if self.state_path.is_file() else {}
        self.logged = state.get("logged", 0)
        info = RunInfo(root=ctx.root, comp=ctx.comp, exp=ctx.exp, name=name, key=key, dir=self.dir,
                       params=flat_config(ctx.cfg), mlflow_uri=rt.mlflow_uri,
                       tags={"comp": ctx.comp, "experiment": ctx.exp, "artifact_key": key, **(tags or {})})
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state = {"logged": self.logged}
        for tracker in rt.trackers:
            guarded = Guarded(tracker, BACKENDS[tracker](), rt.tracker_timeout)
            kept = guarded.call("open", info, state.get(tracker), self.logged)
            if guarded.on:
                self.trackers.append(guarded)
                self.state[tracker] = kept
        if state:
            log.info(f"tracking: {', '.join(t.name for t in self.trackers) or 'no tracker'} resumed after step "
                     f"{self.logged} in {self.dir}")
        self._save()

    def _save(self) -> None:
        atomic_write_json(self.state_path, self.state)

    def _all(self, method: str, *args) -> None:
        for t in self.trackers:
            t.call(method, *args)

    def log_step(self, step: int, metrics: dict) -> None:
        """Metrics of one step (a fold's epoch, from 1); a step this run logged before is not logged again."""
        if not self.trackers or step <= self.logged:
            return
        self.log_metrics(step, metrics)
        self.logged = self.state["logged"] = step
        self._save()

    def log_epochs(self, rows) -> None:
        """A resumed fold's epochs so far (its log.csv rows): those that were not logged before the kill."""
        for row in rows:
            self.log_step(int(row["epoch"]), {k: v for k, v in row.items() if k != "epoch"})

    def log_metrics(self, step: int, metrics: dict) -> None:
        self._all("log_metrics", step, {k: float(v) for k, v in metrics.items()})

    def log_table(self, name: str, table) -> None:
        self._all("log_table", name, table)

    def finish(self, summary: dict | None = None, artifacts=(), failed: bool = False) -> None:
        self._all("log_artifacts", [p for p in artifacts if p.is_file()])
        self._all("close", {k: float(v) for k, v in (summary or {}).items()}, failed)
        for t in self.trackers:
            t.stop()


def epoch_metrics(row: dict, param_groups, images_per_s: float) -> dict:
    """A fold's log.csv row plus the learning rate of every parameter group beyond the first (lr) and the training
    throughput."""
    extra = {f"lr_group{i}": g["lr"] for i, g in enumerate(param_groups) if i > 0}
    return {k: v for k, v in row.items() if k != "epoch"} | extra | {"images_per_s": images_per_s}


def log_stage(ctx, name: str, key: str, metrics: dict, table=None, artifacts=()) -> None:
    """A stage's numbers (at step 0), its CV table and its files, as one finished run."""
    if not ctx.cfg.runtime.trackers:
        return
    run = Run(ctx, name, key)
    run.log_metrics(0, metrics)
    if table is not None:
        run.log_table("cv", table)
    run.finish({}, artifacts)


@contextmanager
def failing(run: Run):
    """Marks the run failed when the block raises (a kill -9 marks nothing: the resumed fold goes on in it)."""
    try:
        yield run
    except BaseException:
        run.finish(failed=True)
        raise
