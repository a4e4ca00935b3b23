"""sweeps/<comp>/<sweep>/results.json: every trial's values and state and, per run of the sweep, what was already
done and what this run trained. Rewritten atomically at every event (a killed sweep leaves what it knew); a rerun
keeps the trials and adds a run. Beside it: leaderboard.csv, Ray Tune's files (ray/). Not an artifact."""
import json
import time
from pathlib import Path

from ..artifacts import stage_root
from ..utils.io import atomic_write_json
from .spec import SweepSpec
from .trials import Trial


class SweepRecord:
    def __init__(self, root: Path, comp: str, sweep: str, spec_file: str, spec: SweepSpec):
        self.path = stage_root(root, "sweep", comp, sweep) / "results.json"
        old = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.run = dict(started=time.strftime("%Y-%m-%d %H:%M:%S"), finished=None, already_done={}, tasks=[],
                        searched=[])
        self.trials = old.get("trials", {})  # {trial: its entry}, the same dict as in self.data
        self.data = dict(sweep=sweep, comp=comp, spec=spec_file, kind="grid" if spec.grid is not None else "search",
                         objective=spec.objective, trials=self.trials, runs=old.get("runs", []) + [self.run])

    def add(self, trial: Trial) -> None:
        self.trials.setdefault(trial.name, dict(state="new"))["values"] = trial.values

    def update(self, name: str, **fields) -> None:
        self.trials[name].update(fields)
        self.save()

    def already_done(self, name: str, what: str) -> None:
        self.run["already_done"][name] = what
        self.save()

    def task(self, name: str, fold: int | None, seconds: float, host: str) -> None:
        """A task this run finished: fold k trained (fold None: the OOF predictions)."""
        self.run["tasks"].append(dict(trial=name, fold=fold, seconds=seconds, host=host))
        self.save()

    def searched(self, name: str) -> None:
        self.run["searched"].append(name)
        self.save()

    def finish(self, **fields) -> None:
        self.data.update(fields)
        self.run["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path, self.data)
