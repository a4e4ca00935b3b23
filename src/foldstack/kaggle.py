"""`make download COMP=<slug>`: the official `kaggle` CLI into input/<slug>/, every zip unpacked (nested ones too).

The CLI reads its own credentials (~/.kaggle/kaggle.json, $KAGGLE_CONFIG_DIR/kaggle.json, KAGGLE_USERNAME and
KAGGLE_KEY, or an API token); they are checked first so that a missing one is one line, not the CLI's traceback."""
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from .data.archives import extract_into
from .errors import PipelineError, last_output_line

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


def download(slug: str, root: Path) -> Path:
    """input/<slug>/ with the competition's files: downloaded and unpacked, or left as it is when it has files."""
    dest = Path(root) / "input" / check_slug(slug)
    if dest.is_dir() and any(p.suffix != ".zip" for p in dest.iterdir()):
        unpack(dest)  # what an interrupted earlier run left zipped
        return dest
    problem = credentials_problem()
    if problem:
        raise PipelineError(problem)
    command = download_command(slug, dest, kaggle_executable())
    dest.mkdir(parents=True, exist_ok=True)
    try:
        run_cli(command, "no network, or the competition's rules not accepted on its Kaggle page?")
        unpack(dest)
    except BaseException:
        if not any(p.suffix != ".zip" for p in dest.iterdir()):
            shutil.rmtree(dest, ignore_errors=True)  # nothing usable: leave no folder that looks downloaded
        raise
    return dest
