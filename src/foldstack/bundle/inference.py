"""foldstack bundle kernel: writes submission.csv for a Kaggle competition from a bundle made by `make bundle`.

It runs offline, standard library only until foldstack is installed: it checks the image's torch and torchvision
against the bundle's, installs foldstack and its pinned wheels from the bundle's dataset (pip --no-index
--no-deps), then predicts with the library's own code (foldstack.bundle.kernel).

    python inference.py                                   # on Kaggle: /kaggle/input/... -> /kaggle/working
    python inference.py --input input/<comp> --output out # anywhere else (--dataset: the bundle's dataset/)

make bundle copies this file into the bundle's kernel/ and fills BUNDLE."""
import argparse
import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

BUNDLE = {}  # filled by make bundle
DESCRIPTION = "Writes submission.csv from a foldstack bundle (make bundle), offline."
KAGGLE_INPUT, KAGGLE_WORKING = Path("/kaggle/input"), Path("/kaggle/working")


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def script_dir():
    where = globals().get("__file__")  # a notebook cell has none
    return Path(where).resolve().parent if where else None


def find_dataset(given):
    """--dataset; else the dataset/ beside this kernel/ folder (a local run); else the one attached on Kaggle
    (/kaggle/input/<slug>, or any folder there whose bundle.json has this bundle's key)."""
    if given:
        return Path(given)
    here = script_dir()
    candidates = [here.parent / "dataset"] if here else []
    candidates.append(KAGGLE_INPUT / BUNDLE["dataset"].split("/", 1)[1])
    for path in candidates:
        if (path / "bundle.json").is_file():
            return path
    # attached under another name or layout (/kaggle/input/datasets/<user>/<slug>): 1 to 3 levels down, not into
    # the competition's image folders
    found = [p for depth in ("*", "*/*", "*/*/*") for p in sorted(KAGGLE_INPUT.glob(f"{depth}/bundle.json"))]
    for path in found:
        try:
            if json.loads(path.read_text()).get("key") == BUNDLE["key"]:
                return path.parent
        except (OSError, ValueError, AttributeError):
            continue
    fail(f"the bundle's dataset {BUNDLE['dataset']} is not attached (no bundle.json with key {BUNDLE['key']} "
         f"under {KAGGLE_INPUT}): add it to the notebook's inputs, or pass --dataset")


def find_input(given):
    """--input; else the competition's folder on Kaggle."""
    if given:
        return Path(given)
    for path in (KAGGLE_INPUT / BUNDLE["competition"], KAGGLE_INPUT / "competitions" / BUNDLE["competition"]):
        if path.is_dir():
            return path
    fail(f"competition {BUNDLE['competition']} not found under {KAGGLE_INPUT}: attach it, or pass --input")


def check_versions(strict: bool) -> None:
    """The bundle was checked with these torch/torchvision versions; another image's may give other numbers."""
    import torch
    import torchvision

    expected = BUNDLE["versions"]
    found = {"python": f"{sys.version_info.major}.{sys.version_info.minor}", "torch": torch.__version__,
             "torchvision": torchvision.__version__}
    print(", ".join(f"{name} {found[name]} (bundle: {expected[name]})" for name in found), flush=True)
    if found["python"] != expected["python"]:
        fail(f"the bundle's wheels are for Python {expected['python']}, this is Python {found['python']}: rebuild "
             f"it with make bundle BUNDLE_ARGS='--python-version {found['python']}'")
    differ = [n for n in ("torch", "torchvision") if found[n].split("+")[0] != expected[n].split("+")[0]]
    if differ:
        message = (f"{' and '.join(differ)} differ from the versions the bundle was made and checked with; "
                   f"predictions may differ slightly")
        if strict:
            fail(message + " (--strict-versions)")
        print(f"warning: {message}", file=sys.stderr, flush=True)


def install(dataset: Path) -> None:
    """foldstack and the pinned wheels, offline, without dependency resolution: what the image has (torch,
    torchvision, numpy ...) is left as it is, whatever version it is. No bytecode compiled ahead: imports compile
    what they use."""
    if importlib.util.find_spec("foldstack") is not None:
        return
    wheels = dataset / "wheels"
    command = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-compile", "--quiet",
               "--find-links", str(wheels), "-r", str(wheels / "requirements.txt")]
    print("installing: " + " ".join(command[3:]), flush=True)
    if subprocess.run(command).returncode != 0:
        fail(f"pip could not install the bundle's wheels from {wheels}")
    importlib.invalidate_caches()


def main(argv=None) -> None:
    if argv is None and "ipykernel" in sys.modules:  # a notebook: its argv is the kernel's, not ours
        argv = []
    p = argparse.ArgumentParser(description=DESCRIPTION)
    p.add_argument("--input", help="the competition folder: sample submission + test images "
                                   f"(default: {KAGGLE_INPUT}/<competition>)")
    p.add_argument("--output", help=f"where submission.csv is written (default: {KAGGLE_WORKING})")
    p.add_argument("--dataset", help="the bundle's dataset folder (default: beside this kernel, or attached on "
                                     "Kaggle)")
    p.add_argument("--device", default="auto", help="auto (cuda when available, else cpu), cpu, cuda, cuda:1 ...")
    p.add_argument("--skip-install", action="store_true", help="foldstack is installed already: no pip install")
    p.add_argument("--strict-versions", action="store_true",
                   help="fail when the image's torch/torchvision differ from the bundle's (default: warn)")
    args = p.parse_args(argv)
    dataset, input_dir = find_dataset(args.dataset), find_input(args.input)
    output = Path(args.output) if args.output else KAGGLE_WORKING
    check_versions(args.strict_versions)
    if not args.skip_install:
        install(dataset)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no network: never let a library ask the hub
    import logging

    from foldstack.bundle.kernel import predict_bundle
    from foldstack.errors import PipelineError

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    try:
        path = predict_bundle(dataset, input_dir, output, args.device)
    except PipelineError as e:
        fail(str(e))
    print(path)


if __name__ == "__main__":
    main()
