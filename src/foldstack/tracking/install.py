"""The mlflow and wandb extras, installed on first use (as `make sweep` installs Ray): pinned by the project's
constraints.txt when foldstack runs from its repository, else named in the error."""
import importlib.util
import logging
import subprocess
import sys
from pathlib import Path

from ..errors import PipelineError

log = logging.getLogger("foldstack")

REPO = Path(__file__).resolve().parents[3]  # src/foldstack/tracking/install.py -> the repository


def ensure_extra(extra: str, module: str) -> None:
    """Import-ready `module`, installing the project's `extra` into this interpreter first when it is missing."""
    if importlib.util.find_spec(module) is not None:
        return
    if not (REPO / "pyproject.toml").is_file():
        raise PipelineError(f"runtime.trackers names {extra}, which is not installed: pip install 'foldstack[{extra}]'")
    log.info(f"runtime.trackers: installing the `{extra}` extra (first use)")
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "-c", str(REPO / "constraints.txt"), "-e",
           f"{REPO}[{extra}]"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PipelineError(f"installing the `{extra}` extra failed ({last}): run {' '.join(cmd)}")
    importlib.invalidate_caches()
