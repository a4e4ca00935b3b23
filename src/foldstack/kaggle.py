"""`make download COMP=<slug>`: the official `kaggle` CLI into input/<slug>/, every zip unpacked (nested ones too).

The CLI reads its own credentials (~/.kaggle/kaggle.json, $KAGGLE_CONFIG_DIR/kaggle.json, KAGGLE_USERNAME and
KAGGLE_KEY, or an API token); they are checked first so that a missing one is one line, not the CLI's traceback.

The CLI does not print a competition's evaluation metric, but Kaggle's API has it (`evaluationMetric` of each
competition in competitions_list): `record_metric` asks the `kaggle` package's KaggleApi and keeps the answer in
input/<slug>/.kaggle_metric.json, which discovery reads (description.py) when the folder has no description.md."""
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from .data.archives import extract_into
from .description import KAGGLE_METRIC_FILE as METRIC_FILE
from .errors import PipelineError, last_output_line
from .utils.io import atomic_write_json

log = logging.getLogger("foldstack")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")  # Kaggle competition slugs: also a safe folder name
CREDENTIALS_HELP = ("put kaggle.json (Kaggle > Settings > API > Create New Token) in ~/.kaggle/, or set KAGGLE_USERNAME "
                    "and KAGGLE_KEY")


def config_dir(env=None, home: Path | None = None) -> Path:
    """Where the CLI reads kaggle.json: $KAGGLE_CONFIG_DIR, else ~/.kaggle."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else Path(home)
    return Path(env["KAGGLE_CONFIG_DIR"]) if env.get("KAGGLE_CONFIG_DIR") else home / ".kaggle"


def credentials_problem(env=None, home: Path | None = None) -> str | None:
    """Why the CLI would have no credentials, or None when it has some."""
    env = os.environ if env is None else env
    if (env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY")) or env.get("KAGGLE_API_TOKEN"):
        return None
    folder = config_dir(env, home)
    if any((folder / name).is_file() for name in ("kaggle.json", "access_token")):
        return None
    return f"no Kaggle credentials ({folder / 'kaggle.json'} not found): {CREDENTIALS_HELP}"


def kaggle_username(env=None, home: Path | None = None) -> str | None:
    """The Kaggle user the CLI acts as: $KAGGLE_USERNAME, else the `username` of kaggle.json; None when neither
    says (an API token alone does not name its user)."""
    env = os.environ if env is None else env
    if env.get("KAGGLE_USERNAME"):
        return env["KAGGLE_USERNAME"]
    path = config_dir(env, home) / "kaggle.json"
    try:
        return json.loads(path.read_text()).get("username") or None
    except (OSError, ValueError, AttributeError):
        return None


def kaggle_executable() -> Path:
    """The CLI of this environment (the `kaggle` extra, installed by `make download` on first use)."""
    cli = Path(sys.executable).parent / "kaggle"
    if not cli.is_file():
        raise PipelineError(f"the kaggle CLI is not installed in {cli.parent.parent}: run `make download`, which "
                            f"installs it (pip install -e '.[kaggle]')")
    return cli


def check_slug(slug: str) -> str:
    if not SLUG.match(slug):
        raise PipelineError(f"COMP={slug!r} is not a Kaggle competition slug (lower-case letters, digits, '-': the "
                            f"last part of https://www.kaggle.com/competitions/<slug>)")
    return slug


def download_command(slug: str, dest: Path, cli: Path) -> list[str]:
    return [str(cli), "competitions", "download", "-c", check_slug(slug), "-p", str(dest)]


def run_cli(command: list[str], hint: str) -> str:
    """Run a kaggle CLI command; its stdout, or one line with the CLI's last words and `hint` when it fails."""
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PipelineError(f"kaggle {' '.join(command[1:3])} failed (exit {proc.returncode}): "
                            f"{last_output_line(proc)} ({hint})")
    return proc.stdout


def unpack(folder: Path) -> list[Path]:
    """Unzip every .zip under `folder` in place, nested ones too, removing each once unpacked; returns them."""
    done = []
    while True:
        zips = sorted(p for p in Path(folder).rglob("*.zip") if p.is_file())
        if not zips:
            return done
        for zip_path in zips:
            try:
                extract_into(zip_path, zip_path.parent)  # merged into the folder: <slug>.zip holds its files
            except zipfile.BadZipFile:
                raise PipelineError(f"{zip_path}: not a valid zip (an interrupted download? delete it and rerun)") \
                    from None
            zip_path.unlink()
            done.append(zip_path)


def evaluation_metric(response, slug: str) -> str | None:
    """The evaluation metric Kaggle names for `slug` in a competitions_list response (kagglesdk's
    ApiListCompetitionsResponse; a competition's `ref` is its slug or its URL); None when absent."""
    for competition in (response.competitions if response is not None else None) or []:
        if competition.ref.rstrip("/").split("/")[-1] == slug:
            return competition.evaluation_metric or None
    return None


def record_metric(slug: str, dest: Path) -> str | None:
    """Ask Kaggle's API for the competition's evaluation metric and keep it in dest/METRIC_FILE. Never stops the
    download: without an answer the metric is inferred as without it, and the log says why."""
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi

        api = KaggleApi()
        api.authenticate()
        metric = evaluation_metric(api.competitions_list(search=slug), slug)
    except (Exception, SystemExit) as e:  # the kaggle package exits on some failures; a network error raises
        log.warning(f"could not read {slug}'s evaluation metric from Kaggle's API ({e.__class__.__name__}: "
                    f"{str(e)[:200]}): the metric is inferred without it")
        return None
    if metric is None:
        log.warning(f"Kaggle's API lists no evaluation metric for {slug}: the metric is inferred without it")
        return None
    atomic_write_json(Path(dest) / METRIC_FILE, {"slug": slug, "evaluation_metric": metric,
                                                 "source": "Kaggle API competitions_list"})
    log.info(f"Kaggle's API: {slug} is scored on {metric!r} -> {Path(dest) / METRIC_FILE}")
    return metric


def download(slug: str, root: Path) -> Path:
    """input/<slug>/ with the competition's files: downloaded and unpacked, or left as it is when it has files;
    Kaggle's evaluation metric recorded beside them (record_metric)."""
    dest = Path(root) / "input" / check_slug(slug)
    if dest.is_dir() and any(p.suffix != ".zip" and p.name != METRIC_FILE for p in dest.iterdir()):
        unpack(dest)  # what an interrupted earlier run left zipped
        if not (dest / METRIC_FILE).is_file() and credentials_problem() is None:
            record_metric(slug, dest)
        return dest
    problem = credentials_problem()
    if problem:
        raise PipelineError(problem)
    command = download_command(slug, dest, kaggle_executable())
    dest.mkdir(parents=True, exist_ok=True)
    try:
        run_cli(command, "no network, or the competition's rules not accepted on its Kaggle page?")
        unpack(dest)
        record_metric(slug, dest)
    except BaseException:
        if not any(p.suffix != ".zip" for p in dest.iterdir()):
            shutil.rmtree(dest, ignore_errors=True)  # nothing usable: leave no folder that looks downloaded
        raise
    return dest
