"""The wheels a bundle carries: the project as a wheel, and every pinned dependency that inference needs and that
Kaggle's image (torch, torchvision and their requirements) does not provide.

Which: the closure of foldstack's runtime requirements (importlib.metadata, markers for the target Python) minus
torch's and torchvision's closure and NOT_FOR_INFERENCE, at the versions installed here. They are fetched with
`pip download --no-deps --only-binary=:all:` into a wheel cache (bundle/.wheels/) shared by later bundles."""
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import PipelineError, last_output_line

PROJECT = "foldstack"
IMAGE_PROVIDES = ("torch", "torchvision")  # and their own requirements: Kaggle's image has them (GPU builds)
# Runtime requirements that inference never imports: plots (matplotlib), the fold split (iterative-stratification),
# the XGBoost meta-model unless the bundled level 2 is one.
NOT_FOR_INFERENCE = ("matplotlib", "iterative-stratification", "xgboost")


@dataclass(frozen=True)
class Target:
    """The interpreter the wheels are for: `python` as X.Y, `platform` a pip platform tag or None (this one)."""
    python: str
    platform: str | None = None

    @classmethod
    def this_interpreter(cls, python: str | None = None, platform: str | None = None) -> "Target":
        here = f"{sys.version_info.major}.{sys.version_info.minor}"
        if python is not None and not python.replace(".", "").isdigit():
            raise PipelineError(f"--python-version {python!r}: expected X.Y, e.g. 3.11")
        return cls(python or here, platform)

    def pip_args(self) -> list[str]:
        args = ["--python-version", self.python]
        return args + (["--platform", self.platform] if self.platform else [])

    @property
    def cache_name(self) -> str:
        return f"py{self.python}-{self.platform or 'this-platform'}"


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def closure(roots, python: str) -> dict[str, str]:
    """{canonical name: installed version} of `roots` and everything they require (with the extras a requirement
    asks for, e.g. torch's cuda-toolkit[cublas, ...]), as installed here."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    environment = {**default_environment(), "python_version": python, "python_full_version": f"{python}.0"}
    found, extras_seen, todo = {}, {}, [(_canonical(r), frozenset()) for r in roots]
    while todo:
        name, extras = todo.pop()
        if name in found and extras <= extras_seen[name]:
            continue
        extras_seen[name] = extras_seen.get(name, frozenset()) | extras
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise PipelineError(f"{name} is required by the project but not installed here: pip install -c "
                                f"constraints.txt -e .") from None
        found[name] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({**environment, "extra": e}) for e in ("", *extras)):
                todo.append((_canonical(req.name), frozenset(req.extras)))
    return found


def inference_pins(target: Target, with_xgboost: bool) -> dict[str, str]:
    """{canonical name: version} of the dependency wheels a bundle carries (sorted by name)."""
    skip = {_canonical(n) for n in NOT_FOR_INFERENCE if not (with_xgboost and n == "xgboost")}
    from packaging.requirements import Requirement

    roots = [Requirement(t) for t in importlib.metadata.requires(PROJECT) or []]
    roots = [r.name for r in roots if r.marker is None and _canonical(r.name) not in skip]
    needed, image = closure(roots, target.python), closure(IMAGE_PROVIDES, target.python)
    return {name: needed[name] for name in sorted(needed) if name not in image}


def bundle_versions(target: Target) -> dict[str, str]:
    """The target's Python, the torch and torchvision a bundle assumes Kaggle's image has (the ones installed and
    tested here: pyproject.toml pins them) and the project's version."""
    return {"python": target.python, **{name: importlib.metadata.version(name) for name in IMAGE_PROVIDES},
            PROJECT: importlib.metadata.version(PROJECT)}


def _pip(args: list[str], what: str) -> None:
    """pip of this interpreter, quiet; one line with pip's last words when it fails."""
    proc = subprocess.run([sys.executable, "-m", "pip", *args, "--quiet"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise PipelineError(f"{what} failed: {last_output_line(proc)}")


def _cached(folder: Path) -> dict[tuple[str, str], Path]:
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    out = {}
    for path in folder.glob("*.whl") if folder.is_dir() else []:
        try:
            name, version, _, _ = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        out[(str(name), str(version))] = path
    return out


def fetch_wheels(pins: dict[str, str], cache: Path, target: Target) -> list[Path]:
    """The wheel file of every pin for `target`, from the cache (cache/<target>/), downloading the missing ones
    there first (one pip call; each file renamed into place complete)."""
    from packaging.version import Version

    folder = Path(cache) / target.cache_name
    wanted = {(name, str(Version(version))) for name, version in pins.items()}
    missing = sorted(wanted - set(_cached(folder)))
    if missing:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=folder) as tmp:
            _pip(["download", "--no-deps", "--only-binary=:all:", "-d", tmp, *target.pip_args(),
                  *(f"{name}=={version}" for name, version in missing)],
                 f"pip download of {len(missing)} wheel(s) for Python {target.python}")
            for path in Path(tmp).glob("*.whl"):
                os.replace(path, folder / path.name)
    cached = _cached(folder)
    absent = sorted(f"{name}=={version}" for name, version in wanted if (name, version) not in cached)
    if absent:
        raise PipelineError(f"no wheel for Python {target.python} ({target.platform or 'this platform'}): "
                            f"{', '.join(absent)}")
    return sorted(cached[key] for key in wanted)


def project_root() -> Path:
    """The project's source (pyproject.toml + src/): where the installed foldstack package is edited."""
    import foldstack

    root = Path(foldstack.__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "src" / PROJECT).is_dir():
        raise PipelineError(f"bundling needs the project's source (pyproject.toml, src/{PROJECT}/) as an editable "
                            f"install (pip install -e .); {PROJECT} is imported from {Path(foldstack.__file__).parent}")
    return root


def source_files(root: Path) -> list[Path]:
    """What the project wheel is built from, sorted: pyproject.toml and the package's Python files."""
    package = sorted(p for p in (root / "src" / PROJECT).rglob("*.py") if "__pycache__" not in p.parts)
    return [root / "pyproject.toml", *package]


def source_fingerprint(root: Path) -> str:
    """A hash of the project wheel's sources: a bundle is rebuilt when the code it ships changes."""
    h = hashlib.sha256()
    for path in source_files(root):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def build_project_wheel(root: Path, dest: Path) -> Path:
    """The project as a wheel in dest, built from a copy of its sources (the checkout gets no build/ folder),
    with this environment's setuptools (no build isolation, no index)."""
    with tempfile.TemporaryDirectory() as tmp:
        for path in source_files(root):
            copy = Path(tmp) / path.relative_to(root)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
        _pip(["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dest), tmp],
             f"building the {PROJECT} wheel")
    [wheel] = Path(dest).glob(f"{PROJECT}-*.whl")
    return wheel
