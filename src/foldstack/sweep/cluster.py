"""The Ray cluster a sweep runs on: the `sweep` extra checked, the connection (SWEEP_ADDRESS or RAY_ADDRESS, else a
local Ray), and what one task asks it for. Only `connect` imports Ray, once its settings are in the environment."""
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


def missing_extra(module: str) -> PipelineError:
    return PipelineError(f"make sweep needs Ray Tune and Optuna ({module} is missing): "
                         f"pip install -c constraints.txt -e '.[sweep]'")


def check_installed() -> None:
    """The `sweep` extra is installed, found without importing it (before anything of the sweep runs)."""
    for module in ("ray", "optuna"):
        if importlib.util.find_spec(module) is None:
            raise missing_extra(module)


def ray_settings(address: str | None) -> None:
    """Set before Ray is imported (it reads them then): every task's log line, undeduplicated and uncoloured; Tune's
    older output, where verbose=0 drops its tables. A driver joining a `ray start` cluster (token authentication,
    Ray 2.60) sends its token only under RAY_AUTH_MODE=token: set it where a token is at hand and no mode chosen."""
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

    address = os.environ.get("SWEEP_ADDRESS") or os.environ.get("RAY_ADDRESS") or None
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
    for key, asked, unit in (("cpus", resources.cpus, "CPU"), ("gpus", gpus, "GPU")):
        if asked > (have := cluster.get(unit, 0)):
            raise PipelineError(f"resources.{key}={asked:g} per task, but the cluster has {have:g} {unit}s")
    return Slot(resources.cpus, gpus, resources.memory_gb)
