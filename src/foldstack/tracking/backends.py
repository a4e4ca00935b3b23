"""The three trackers behind one small interface, each through its documented client API:

    open(info, state, logged) -> state to keep (its run id), or None to start afresh next time
    log_metrics(step, {name: value}); log_table(name, DataFrame); log_artifacts([paths]); close(summary, failed)

`state` is what open returned when this run was opened before (a killed fold resuming), `logged` the last step
every tracker had logged then: a resumed run appends to the same run, each step once."""
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from netrc import NetrcParseError, netrc
from pathlib import Path

from .install import ensure_extra


@dataclass
class RunInfo:
    root: Path              # the project
    comp: str
    exp: str
    name: str               # fold0, oof, stack, pseudo-round1
    key: str                # the artifact key it belongs to
    dir: Path               # runs/<comp>/<exp>/<key>/<name>/
    params: dict = field(default_factory=dict)   # the resolved config, flattened: {"train.lr": 0.001, ...}
    tags: dict = field(default_factory=dict)     # artifact key, paths, fold
    mlflow_uri: str = ""


class TensorBoard:
    def open(self, info: RunInfo, state, logged: int):
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: steps a killed run wrote after its last checkpointed epoch are hidden, then written again
        self.writer = SummaryWriter(log_dir=str(info.dir), purge_step=logged + 1 if state is not None else None)
        if state is None:
            self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in info.params.items()), 0)
            self.writer.add_text("tags", "\n".join(f"    {k}: {v}" for k, v in info.tags.items()), 0)
        self.params = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in info.params.items()}
        return {}

    def log_metrics(self, step: int, metrics: dict) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()  # a kill -9 loses nothing already logged

    def log_table(self, name: str, table) -> None:
        text = table.to_string(index=False)  # as a code block: TensorBoard renders text as markdown
        self.writer.add_text(name, "\n".join(f"    {line}" for line in text.splitlines()), 0)
        self.writer.flush()

    def log_artifacts(self, paths) -> None:
        import numpy as np
        from PIL import Image

        for path in paths:
            if path.suffix == ".png":
                with Image.open(path) as im:
                    self.writer.add_image(path.stem, np.asarray(im.convert("RGB")), 0, dataformats="HWC")
        self.writer.flush()

    def close(self, summary: dict, failed: bool) -> None:
        if summary and not failed:  # the HParams dashboard: the config against the run's final numbers
            self.writer.add_hparams(self.params, {f"hparam/{k}": v for k, v in summary.items()}, run_name=".")
        self.writer.close()


class MLflow:
    def open(self, info: RunInfo, state, logged: int):
        ensure_extra("mlflow", "mlflow")
        from mlflow import MlflowClient
        from mlflow.entities import Param

        local = info.root / "mlruns"
        if not info.mlflow_uri:
            local.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=info.mlflow_uri or f"sqlite:///{local / 'mlflow.db'}")
        if state is not None:
            self.run_id = state["run_id"]
            self.seen = {m.step for m in self.client.get_metric_history(self.run_id, "train_loss")}
            self.client.update_run(self.run_id, status="RUNNING")
            return state
        experiment = self.client.get_experiment_by_name(info.comp)
        if experiment is None:
            try:
                exp_id = self.client.create_experiment(
                    info.comp, artifact_location=None if info.mlflow_uri else (local / "artifacts").as_uri())
            except Exception:  # noqa: BLE001 (another fold process created it first)
                exp_id = self.client.get_experiment_by_name(info.comp).experiment_id
        else:
            exp_id = experiment.experiment_id
        tags = {**{k: str(v) for k, v in info.tags.items()}, "experiment": info.exp}
        self.run_id = self.client.create_run(exp_id, run_name=f"{info.exp} {info.name}", tags=tags).info.run_id
        self.seen = set()
        params = [Param(k, str(v)[:6000]) for k, v in info.params.items()]
        for i in range(0, len(params), 100):  # the API takes at most 100 per batch
            self.client.log_batch(self.run_id, params=params[i:i + 100])
        return {"run_id": self.run_id}

    def log_metrics(self, step: int, metrics: dict) -> None:
        from mlflow.entities import Metric

        if step in self.seen:  # logged before a kill, after the last state this run kept
            return
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(_mlflow_name(k), float(v), now, step)
                                                     for k, v in metrics.items()])

    def log_table(self, name: str, table) -> None:
        self.client.log_text(self.run_id, table.to_csv(index=False), f"{name}.csv")

    def log_artifacts(self, paths) -> None:
        for path in paths:
            self.client.log_artifact(self.run_id, str(path))

    def close(self, summary: dict, failed: bool) -> None:
        if summary:
            self.log_metrics(-1, {f"final/{k}": v for k, v in summary.items()})
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")


def _mlflow_name(name: str) -> str:
    return re.sub(r"[^\w\-. /:]", "_", name)  # the characters MLflow accepts in a metric name


class WandB:
    def open(self, info: RunInfo, state, logged: int):
        ensure_extra("wandb", "wandb")
        import wandb

        run_id = state["run_id"] if state is not None else secrets.token_hex(4)  # W&B ids: letters and digits
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_api_key() else "offline")
        self.run = wandb.init(
            project=info.comp, group=info.exp, name=f"{info.exp} {info.name}", id=run_id, dir=str(info.dir),
            mode=mode, resume="allow", job_type=re.sub(r"\d+$", "", info.name),
            config=info.params if state is None else None, tags=[info.exp, info.name, info.key[:64]],
            settings=wandb.Settings(silent=True, console="off", disable_git=True, save_code=False))
        if state is None:
            self.run.config.update({f"foldstack/{k}": str(v) for k, v in info.tags.items()})
        return {"run_id": run_id}

    def log_metrics(self, step: int, metrics: dict) -> None:
        self.run.log(dict(metrics), step=step)  # W&B drops a step not above its last: no duplicates on resume

    def log_table(self, name: str, table) -> None:
        import wandb

        self.run.log({name: wandb.Table(dataframe=table.astype(str))})

    def log_artifacts(self, paths) -> None:
        for path in paths:
            self.run.save(str(path), base_path=str(Path(path).parent), policy="now")

    def close(self, summary: dict, failed: bool) -> None:
        self.run.summary.update(summary)
        self.run.finish(exit_code=1 if failed else 0)


def wandb_api_key() -> bool:
    """Whether W&B has credentials (WANDB_API_KEY, or `wandb login`'s ~/.netrc entry): online, else offline."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = re.sub(r"^https?://", "", os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).split("/")[0]
    try:
        return netrc().authenticators(host) is not None
    except (OSError, NetrcParseError):  # no or unreadable ~/.netrc: no key
        return False


BACKENDS = {"tensorboard": TensorBoard, "mlflow": MLflow, "wandb": WandB}
