"""`make kaggle-push`: a bundle's dataset and kernel to Kaggle with the official CLI.

    kaggle datasets status <user>/<slug>                     does the dataset exist? (unless --create / --version)
    kaggle datasets create -p <bundle>/dataset -r zip        a new dataset (private), or
    kaggle datasets version -p <bundle>/dataset -r zip -m .. a new version of it
    kaggle datasets status <user>/<slug>                     until `ready` (--wait seconds)
    kaggle kernels push -p <bundle>/kernel                   the notebook, which Kaggle then runs

`-r zip` uploads the subfolders (wheels/, experiments/, level2/) as archives that Kaggle unpacks into the same
tree. The ids come from the bundle's own metadata files; the credentials are checked first (one line)."""
import json
import time
from pathlib import Path

from ..artifacts import latest, stage_root
from ..errors import PipelineError
from ..kaggle import credentials_problem, run_cli
from .metadata import DATASET_METADATA, KERNEL_METADATA

HINT = "no network, or a slug taken by someone else's dataset or kernel?"


def latest_bundle(root: Path, comp: str) -> Path:
    found = latest(root, "bundle", comp)
    if found is None:
        raise PipelineError(f"no bundle of {comp} in {stage_root(root, 'bundle', comp)}: run `make bundle "
                            f"COMP={comp}` first")
    return found


def bundle_ids(bundle: Path) -> tuple[str, str]:
    """(dataset id, kernel id) from the bundle's metadata files."""
    try:
        dataset = json.loads((bundle / "dataset" / DATASET_METADATA).read_text())["id"]
        kernel = json.loads((bundle / "kernel" / KERNEL_METADATA).read_text())["id"]
    except (OSError, ValueError, KeyError) as e:
        raise PipelineError(f"{bundle}: not a complete bundle ({e.__class__.__name__}: {e})") from None
    return dataset, kernel


def status_command(cli: Path, dataset_id: str) -> list[str]:
    return [str(cli), "datasets", "status", dataset_id]


def upload_command(cli: Path, bundle: Path, exists: bool) -> list[str]:
    folder = str(bundle / "dataset")
    if exists:
        return [str(cli), "datasets", "version", "-p", folder, "-r", "zip", "-m", f"foldstack bundle {bundle.name}"]
    return [str(cli), "datasets", "create", "-p", folder, "-r", "zip"]


def kernel_command(cli: Path, bundle: Path) -> list[str]:
    return [str(cli), "kernels", "push", "-p", str(bundle / "kernel")]


def dataset_status(cli: Path, dataset_id: str) -> str | None:
    """The dataset's status (`ready`, `pending`, ...), or None when the CLI says it does not exist."""
    try:
        said = run_cli(status_command(cli, dataset_id), HINT).split()
    except PipelineError:
        return None
    return said[-1].lower() if said else None


def wait_until_ready(cli: Path, dataset_id: str, seconds: float, poll: float = 10) -> None:
    """The kernel reads the dataset: push it once Kaggle has processed the upload."""
    deadline = time.time() + seconds
    while (status := dataset_status(cli, dataset_id)) != "ready":
        if time.time() >= deadline:
            raise PipelineError(f"dataset {dataset_id} is {status or 'not found'} after {seconds:.0f} s: push the "
                                f"kernel later with `kaggle kernels push -p <bundle>/kernel`, or rerun with a "
                                f"longer --wait")
        time.sleep(poll)


def push(bundle: Path, cli: Path, exists: bool | None = None, wait: float = 600, dry_run: bool = False,
         poll: float = 10) -> list[list[str]]:
    """Upload the dataset (created, or versioned when it exists: `exists`, else asked of the CLI), wait for it,
    push the kernel. Returns the commands run (dry_run: the ones it would run, `datasets create` unless told
    the dataset exists)."""
    dataset_id, _ = bundle_ids(bundle)
    if dry_run:
        return [upload_command(cli, bundle, bool(exists)), kernel_command(cli, bundle)]
    problem = credentials_problem()
    if problem:
        raise PipelineError(problem)
    if exists is None:
        exists = dataset_status(cli, dataset_id) is not None
    commands = [upload_command(cli, bundle, exists), kernel_command(cli, bundle)]
    run_cli(commands[0], HINT)
    wait_until_ready(cli, dataset_id, wait, poll)
    run_cli(commands[1], HINT)
    return commands
