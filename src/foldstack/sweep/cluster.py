"""The Ray cluster a sweep runs on: the `sweep` extra checked, the connection (SWEEP_ADDRESS or RAY_ADDRESS, else a
local Ray on this machine's CPUs and GPUs), and what one task asks it for. Ray is imported by `connect`, once its
settings are in the environment, not by importing this module."""
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import PipelineError
from .spec import Resources

log = logging.getLogger("foldstack")

OBJECT_STORE_BYTES = 100 * 2**20  # tasks exchange names and paths, never arrays: Ray's smallest store will do
PASSED_ENV = ("HF_HUB_OFFLINE", "HF_HOME", "TORCH_HOME")  # a remote node's workers do not inherit the driver's
EXTRA = ("ray", "optuna")


def missing_extra(module: str) -> PipelineError:
    return PipelineError(f"make sweep needs Ray Tune and Optuna ({module} is missing): "
                         f"pip install -c constraints.txt -e '.[sweep]'")


def check_installed() -> None:
    """The `sweep` extra is installed, found without importing it (before anything of the sweep runs)."""
    for module in EXTRA:
        if importlib.util.find_spec(module) is None:
            raise missing_extra(module)


def cluster_address() -> str | None:
    return os.environ.get("SWEEP_ADDRESS") or os.environ.get("RAY_ADDRESS") or None


def ray_settings(address: str | None) -> None:
    """Ray's settings, in the environment before Ray is imported (it reads RAY_DEDUP_LOGS then): every task's log
    lines reach the terminal (Ray would fold repeated ones into one), without colour codes; Tune's own tables are
    left out (verbose=0 under its older output): the driver logs each trial's epochs itself. A cluster started
    with `ray start` uses token authentication (Ray 2.60), but a driver that joins it sends its token only under
    RAY_AUTH_MODE=token: set it when a token is at hand and nobody chose a mode."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if address and "RAY_AUTH_MODE" not in os.environ and (
            os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
            or (Path.home() / ".ray" / "auth_token").is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"


def connect(cpus: int | None = None) -> dict:
    """ray.init: the existing cluster at SWEEP_ADDRESS / RAY_ADDRESS, else a local one with this machine's GPUs and
    `cpus` CPUs (default all). Workers import foldstack from the source this driver runs (PYTHONPATH), so a
    checkout on the shared file system is the code every node runs. Returns the cluster's resources."""
    import foldstack

    address = cluster_address()
    ray_settings(address)
    import ray  # after ray_settings (see there)

    source = str(Path(foldstack.__file__).resolve().parents[1])
    paths = [source] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != source]
    env = {"PYTHONPATH": os.pathsep.join(paths), **{k: os.environ[k] for k in PASSED_ENV if k in os.environ}}
    options = dict(runtime_env={"env_vars": env}, logging_level=logging.WARNING, log_to_driver=True)
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

    def memory(self) -> dict:
        return {"memory": int(self.memory_gb * 2**30)} if self.memory_gb else {}

    def task_options(self) -> dict:
        """A remote function's options (`.options(...)`)."""
        return dict(num_cpus=self.cpus, num_gpus=self.gpus, **self.memory())

    def trial_resources(self) -> dict:
        """The same request as Tune writes it (`tune.with_resources`)."""
        return dict(cpu=self.cpus, gpu=self.gpus, **self.memory())


def slot(resources: Resources, cluster: dict) -> Slot:
    """A task's request, checked against the cluster (a request no node can meet would wait forever)."""
    gpus = (1.0 if cluster.get("GPU", 0) > 0 else 0.0) if resources.gpus == "auto" else float(resources.gpus)
    if resources.cpus > cluster.get("CPU", 0):
        raise PipelineError(f"resources.cpus={resources.cpus:g} per task, but the cluster has "
                            f"{cluster.get('CPU', 0):g} CPUs")
    if gpus > cluster.get("GPU", 0):
        raise PipelineError(f"resources.gpus={gpus:g} per task, but the cluster has {cluster.get('GPU', 0):g} GPUs")
    return Slot(resources.cpus, gpus, resources.memory_gb)
